from verl_ext.testing.cpu_backend import main

raise SystemExit(main())
