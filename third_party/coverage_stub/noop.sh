#!/bin/sh
echo "bazel coverage is not available offline (stub)" >&2
exit 1
