#!/bin/sh
# The namespace ticketops uses; the workers register its search attributes at start.
set -eu
NAMESPACE=${DEFAULT_NAMESPACE:-default}
ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}
until temporal operator cluster health --address "$ADDRESS"; do sleep 2; done
temporal operator namespace describe -n "$NAMESPACE" --address "$ADDRESS" \
  || temporal operator namespace create -n "$NAMESPACE" --retention 30d --address "$ADDRESS"
