#!/usr/bin/env bash
# DOCKER_CMD for LocalStack: the docker client, except that `pull` of an
# image the local dockerd already has succeeds without asking a registry.
# LocalStack pulls the runtime image at every function create
# (`pull IMAGE --platform P`); offline that fails, though localstack.sh has
# imported the image under its name.
set -euo pipefail
if [ "${1:-}" = pull ]; then
    image=""
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --platform | -a) shift 2 || true ;;
            -*) shift ;;
            *) image=${image:-$1}; shift ;;
        esac
    done
    if [ -n "$image" ] && docker image inspect "$image" >/dev/null 2>&1; then
        echo "$image: present locally"
        exit 0
    fi
    echo "Error response from daemon: $image: not present locally, and no registry offline" >&2
    exit 1
fi
exec docker "$@"
