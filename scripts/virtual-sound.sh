#!/usr/bin/env bash
# Starts a private, user-mode PulseAudio server with virtual sound cards, for machines with
# no sound card (CI, containers). It is real-time: audio moves at the clock rate, as with
# real hardware.
#   room     a null sink standing for the air of a room: what is played into it is heard
#            by its monitor, `room.monitor`, the virtual microphone. A speaker playing into
#            `room` is therefore heard by the microphone too (acoustic echo).
#   speaker  a separate null sink, for playback that the microphone must not hear.
#
# Usage: eval "$(scripts/virtual-sound.sh start)"   # exports PULSE_SERVER for this shell
#        scripts/virtual-sound.sh stop
set -euo pipefail
DIR="${HARK_PULSE_DIR:-/tmp/hark-pulse-$(id -u)}"

case "${1:-start}" in
  start)
    mkdir -p "$DIR/runtime" "$DIR/home"
    chmod 700 "$DIR/runtime"
    export XDG_RUNTIME_DIR="$DIR/runtime" HOME="$DIR/home"
    if ! pactl --server "unix:$DIR/runtime/pulse/native" info >/dev/null 2>&1; then
      pulseaudio -n --daemonize=yes --exit-idle-time=-1 --use-pid-file=yes \
        --system=false --disallow-exit=yes --log-target=file:"$DIR/pulse.log" \
        -L "module-native-protocol-unix" \
        -L "module-null-sink sink_name=room rate=48000 channels=1" \
        -L "module-null-sink sink_name=speaker rate=48000 channels=1" \
        -L "module-always-sink" >/dev/null 2>&1
      for _ in $(seq 50); do
        pactl --server "unix:$DIR/runtime/pulse/native" info >/dev/null 2>&1 && break
        sleep 0.1
      done
    fi
    pactl --server "unix:$DIR/runtime/pulse/native" info >/dev/null
    echo "export PULSE_SERVER=unix:$DIR/runtime/pulse/native"
    ;;
  stop)
    XDG_RUNTIME_DIR="$DIR/runtime" HOME="$DIR/home" pulseaudio --kill 2>/dev/null || true
    # Without its runtime folder (a test that cleaned up first) --kill cannot find the
    # server; its command line names this folder's log, which finds it.
    pkill -f -- "--log-target=file:$DIR/pulse.log" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
