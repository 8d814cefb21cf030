#!/usr/bin/env bash
# Local monitoring: Prometheus (Debian's package) scraping shop-local's
# /metrics, with the recording rules and the alerts that mirror the
# template's CloudWatch alarms, and a dashboard (a console template).
#
#   local-stack/monitoring.sh start        scrape SHOP_URL (default http://127.0.0.1:3000);
#                                          prints Prometheus's URL as its last line
#   local-stack/monitoring.sh stop
#   local-stack/monitoring.sh check        promtool: the configuration, the rules, their unit tests
#   local-stack/monitoring.sh screenshot FILE [WIDTHxHEIGHT]
#                                          the running dashboard, through headless Chromium
#
# Prometheus listens on 127.0.0.1 only (PROMETHEUS_PORT, default a free
# port); its data and configuration live in MONITORING_DIR (default
# .data/monitoring). The dashboard is <url>/consoles/shop.html.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

MONITORING_SRC="$STACK_DIR/monitoring"
STATE="${MONITORING_DIR:-$REPO_DIR/.data/monitoring}"
SHOP_URL="${SHOP_URL:-http://127.0.0.1:3000}"

ensure_prometheus() {
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
    # Where an init system runs, the package also enables its own service
    # (port 9090, every interface); this script never uses it, and runs
    # its own instance on loopback.
    apt_install prometheus
}

# write_config FILE TARGET: the scrape configuration for TARGET (host:port).
write_config() {
    local file=$1 target=$2
    cat >"$file" <<YAML
# Written by local-stack/monitoring.sh; the source is the script.
global:
  scrape_interval: 5s
  evaluation_interval: 15s
rule_files:
  - $MONITORING_SRC/rules/recording.yml
  - $MONITORING_SRC/rules/alerts.yml
scrape_configs:
  - job_name: shop-local
    metrics_path: /metrics
    static_configs:
      - targets: ['$target']
YAML
}

check() {
    ensure_prometheus
    local dir
    dir=$(mktemp -d)
    write_config "$dir/prometheus.yml" 127.0.0.1:3000
    promtool check config "$dir/prometheus.yml"
    promtool check rules "$MONITORING_SRC"/rules/*.yml
    (cd "$MONITORING_SRC/tests" && promtool test rules alerts_test.yml)
    rm -rf "$dir"
}

start() {
    if [ -f "$STATE/prometheus.pid" ] && kill -0 "$(cat "$STATE/prometheus.pid")" 2>/dev/null; then
        log "already running"
        cat "$STATE/url"
        return 0
    fi
    ensure_prometheus
    mkdir -p "$STATE/data"
    local target=${SHOP_URL#*://}
    target=${target%%/*}
    write_config "$STATE/prometheus.yml" "$target"
    local port=${PROMETHEUS_PORT:-$(free_port)}
    prometheus --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/data" \
        --web.listen-address="127.0.0.1:$port" \
        --web.console.templates="$MONITORING_SRC/consoles" --web.console.libraries="$MONITORING_SRC/consoles" \
        >"$STATE/prometheus.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$STATE/prometheus.pid"
    wait_for_port "$port" prometheus "$pid" || { tail -20 "$STATE/prometheus.log" >&2; return 1; }
    echo "http://127.0.0.1:$port" >"$STATE/url"
    log "Prometheus scraping $SHOP_URL/metrics every 5 s; dashboard: http://127.0.0.1:$port/consoles/shop.html"
    cat "$STATE/url"
}

stop() {
    if [ -f "$STATE/prometheus.pid" ]; then
        stop_pid "$(cat "$STATE/prometheus.pid")"
        rm -f "$STATE/prometheus.pid" "$STATE/url"
        log "stopped"
    else
        log "nothing to stop"
    fi
}

# screenshot FILE [SIZE]: the dashboard as a person sees it once its
# graphs have drawn.
screenshot() {
    local file=$1 size=${2:-1400x1500}
    [ -f "$STATE/url" ] || { log "not started"; return 1; }
    ensure_chromium
    local url profile
    url="$(cat "$STATE/url")/consoles/shop.html"
    profile=$(mktemp -d)
    local flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
        --disable-component-update --disable-sync --hide-scrollbars "--user-data-dir=$profile"
        --virtual-time-budget=8000 "--window-size=${size/x/,}")
    chromium "${flags[@]}" "--screenshot=$file" "$url" >/dev/null 2>&1
    rm -rf "$profile"
    [ -s "$file" ] || { log "no screenshot was written"; return 1; }
    log "screenshot of $url in $file"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    check) check ;;
    screenshot) shift; screenshot "$@" ;;
    *) echo "usage: $0 start|stop|check|screenshot FILE [WIDTHxHEIGHT]" >&2; exit 2 ;;
esac
