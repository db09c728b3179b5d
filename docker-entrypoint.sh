#!/bin/sh
# The image's entry point: `beaver ARGS`, then what the run wrote into
# /beaver/results is handed to the owner of that folder, the bind mount of
# `docker run -v "$PWD/results:/beaver/results"`, so its user can delete it
# without root.  A folder dockerd made for the mount is root's: then
# everything in it is left writable by all instead (mkdir results first to
# get it as your own).
#
# PID 1 of a container gets no default signal handling: SIGTERM (docker
# stop) and SIGINT (Ctrl-C, proxied by docker run) are passed on to beaver,
# which takes its network down, and its exit status is this script's.
set -u
RESULTS=/beaver/results

beaver "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
status=0
while :; do
    wait "$child"
    status=$?
    kill -0 "$child" 2>/dev/null || break   # a signal ended the wait, not beaver
done

if [ -d "$RESULTS" ]; then
    owner=$(stat -c %u:%g "$RESULTS")
    if [ "$owner" != "0:0" ]; then
        chown -R -h "$owner" "$RESULTS"
    else
        chmod -R a+rwX "$RESULTS"
    fi
fi
exit "$status"
