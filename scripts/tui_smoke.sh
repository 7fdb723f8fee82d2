#!/usr/bin/env bash
# Drive the real app in a real terminal: tmux at 100x30 over a temporary home seeded with one
# finished sweep. Each step sends keys, waits for a string that proves the screen arrived and
# prints the pane. Exits non-zero (after printing the pane) when a string never shows up.
#
#   scripts/tui_smoke.sh            # from the repository root, with .venv set up
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d)
SOCKET="promptlooper-smoke-$$"
PL="$PWD/.venv/bin/promptlooper"
cleanup() {
    tmux -L "$SOCKET" kill-server 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

pane() { tmux -L "$SOCKET" capture-pane -p -t smoke; }

# wait_for TEXT [SECONDS]: poll the pane until TEXT appears.
wait_for() {
    local text=$1 deadline=$((SECONDS + ${2:-15}))
    until pane | grep -qF -- "$text"; do
        if ((SECONDS >= deadline)); then
            echo "!! timed out waiting for: $text" >&2
            pane
            exit 1
        fi
        sleep 0.2
    done
}

# step TITLE TEXT KEY...: send the keys, wait for TEXT, print the pane under TITLE.
step() {
    local title=$1 text=$2
    shift 2
    local key
    for key in "$@"; do
        # One key at a time: an Escape followed at once by another key reads as alt+key.
        tmux -L "$SOCKET" send-keys -t smoke "$key"
        sleep 0.4
    done
    wait_for "$text"
    sleep 0.3 # let the frame that showed TEXT finish drawing
    printf '\n===== %s =====\n' "$title"
    pane
}

"$PL" --home "$WORK/home" run sample_experiments/quickstart.yaml >/dev/null

# Variables set with `new-session -e` do not reach the command: set them inside it.
tmux -L "$SOCKET" new-session -d -s smoke -x 100 -y 30 \
    "XDG_CONFIG_HOME='$WORK/config' TERM=xterm-256color '$PL' --home '$WORK/home'; sleep 3"

step "experiments" "quickstart"
step "help" "Experiments — keys" F1
step "endpoints" "built in" Escape F3
step "endpoint test" "connected in" t
step "editor" "LLM calls" Escape Enter
step "command palette" "theme: dusk" Escape Escape C-p "theme: dusk"
step "theme switched" "quickstart" Enter
tmux -L "$SOCKET" send-keys -t smoke C-q
sleep 1
grep -q '"theme": "dusk"' "$WORK/home/tui.json" && echo "theme remembered: dusk"
