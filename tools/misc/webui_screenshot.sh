#!/usr/bin/env bash
# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
#
# A screenshot of the web demo (demo/webui.py) with headless Chromium, for
# docs/webui.md.
#
#   bash tools/misc/webui_screenshot.sh [OUT] [-- WEBUI_ARGS...]
#
# OUT defaults to docs/webui.png. Unless URL is set, the script starts
# `demo/webui.py --preload segment WEBUI_ARGS...` on 127.0.0.1:$PORT (the
# page opens with the first shapes example and its result, computed before
# the page is served), waits for it, takes the picture and stops the app.
#
# Environment:
#   URL       an already running page to take instead (nothing is started)
#   PORT      port for the started app (default 7861)
#   TASK      the task shown by the started app (default segment)
#   WINDOW    browser window size W,H (default 1280,1100)
#   WAIT_MS   virtual time the page gets to render (default 15000)
#   CHROMIUM  the browser binary (default: the first of chromium,
#             chromium-headless-shell, chromium-browser, google-chrome)
#   PYTHON    command that runs the started app (default .venv/bin/python;
#             may carry a prefix, e.g. "nice -n 19 .venv/bin/python")
#
# Needs Chromium: `apt-get install -y chromium` (Debian's package).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

OUT=docs/webui.png
if [ $# -gt 0 ] && [ "$1" != "--" ]; then OUT=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
PORT=${PORT:-7861}
TASK=${TASK:-segment}
WINDOW=${WINDOW:-1280,1100}
WAIT_MS=${WAIT_MS:-15000}
PYTHON=${PYTHON:-.venv/bin/python}

log() { printf '[webui_screenshot] %s\n' "$*" >&2; }

if [ -z "${CHROMIUM:-}" ]; then
    for name in chromium chromium-headless-shell chromium-browser \
            google-chrome; do
        if command -v "$name" >/dev/null 2>&1; then CHROMIUM=$name; break; fi
    done
fi
if [ -z "${CHROMIUM:-}" ]; then
    log "no Chromium found; install it with: apt-get install -y chromium"
    exit 1
fi

APP_PID=
SHOT_DIR=$(mktemp -d)
cleanup() {
    if [ -n "$APP_PID" ]; then kill "$APP_PID" 2>/dev/null || true; fi
    rm -rf "$SHOT_DIR"
}
trap cleanup EXIT

if [ -z "${URL:-}" ]; then
    URL="http://127.0.0.1:${PORT}/"
    LOG="$SHOT_DIR/webui.log"
    log "starting demo/webui.py on $URL"
    read -ra PY <<< "$PYTHON"
    GRADIO_ANALYTICS_ENABLED=False "${PY[@]}" demo/webui.py "$@" \
        --host 127.0.0.1 --port "$PORT" --preload "$TASK" >"$LOG" 2>&1 &
    APP_PID=$!
    for _ in $(seq 1 240); do
        if curl -sf -o /dev/null "$URL"; then break; fi
        if ! kill -0 "$APP_PID" 2>/dev/null; then
            log "the app stopped:"; tail -n 30 "$LOG" >&2; exit 1
        fi
        sleep 1
    done
    curl -sf -o /dev/null "$URL" || { log "no answer from $URL"; exit 1; }
fi

mkdir -p "$(dirname "$OUT")"
SHOT="$SHOT_DIR/webui.png"
log "screenshot of $URL -> $OUT ($WINDOW)"
# --no-sandbox: Chromium refuses to run as root otherwise
"$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --disable-extensions --disable-background-networking \
    --window-size="$WINDOW" --virtual-time-budget="$WAIT_MS" \
    --screenshot="$SHOT" "$URL" >/dev/null 2>&1 || true
[ -s "$SHOT" ] || { log "Chromium wrote no picture"; exit 1; }
mv "$SHOT" "$OUT"
log "wrote $OUT"
