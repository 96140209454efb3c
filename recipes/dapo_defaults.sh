# shellcheck shell=bash
# DAPO's differences from the main run (speciarl-method.md §8.2), shared by both DAPO recipes.
# Sourced before common.sh; each line only fills what the user left unset.
: "${USE_KL_LOSS:=False}"
: "${KL_LOSS_COEF:=0.0}"
: "${CLIP_RATIO_LOW:=0.2}"
: "${CLIP_RATIO_HIGH:=0.28}"            # decoupled clip ("clip-higher")
: "${CLIP_RATIO_C:=10.0}"
: "${LOSS_AGG_MODE:=token-mean}"
: "${USE_DYNAMIC_BSZ:=True}"
: "${PPO_MAX_TOKEN_LEN_PER_GPU:=4096}"  # also the rollout and ref log-prob limit
: "${OVERLONG_BUFFER:=True}"            # linear penalty from 1,536 to 2,048 response tokens, down to -1
: "${OVERLONG_BUFFER_LEN:=512}"
: "${OVERLONG_PENALTY_FACTOR:=1.0}"
