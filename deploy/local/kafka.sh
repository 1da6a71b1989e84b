#!/usr/bin/env bash
# A real Apache Kafka 4.x broker (KRaft, single node, combined broker+controller) without Docker:
# the jars come from Maven Central (kafka/pom.xml) and run with the local Java 17+.
#
#   kafka.sh fetch    download the jars into the cache (skipped when already there)
#   kafka.sh start    fetch if needed, format storage on first start, launch, wait until ready
#   kafka.sh stop     SIGTERM the PID from the PID file, wait for exit (SIGKILL after a timeout)
#   kafka.sh status   exit 0 when running and answering, 3 when not running, 1 when not answering
#
# Environment (defaults in brackets):
#   KAFKA_VERSION [4.4.0]  LOG4J_VERSION [matches KAFKA_VERSION]
#   ICEWATCH_CACHE [$HOME/.cache/icewatch]   jars go to $ICEWATCH_CACHE/kafka-$KAFKA_VERSION/libs
#   KAFKA_DIR [${XDG_STATE_HOME:-$HOME/.local/state}/icewatch/kafka]
#       holds server.properties, data/ (log.dirs), logs/ (server.log, stdout.log), kafka.pid
#   KAFKA_PORT [9092]  KAFKA_CONTROLLER_PORT [9093]   both bound to 127.0.0.1 only
#   KAFKA_HEAP_OPTS [-Xms256m -Xmx512m]  KAFKA_JVM_OPTS [G1 settings from kafka-run-class.sh + C1 only]
#   KAFKA_CDS [1]  1: the first broker run records a class-data-sharing archive at exit
#       ($ICEWATCH_CACHE/kafka-<version>/cds-<java build>.jsa) that later starts map (~1 s CPU less)
#   KAFKA_START_TIMEOUT [120] seconds   KAFKA_STOP_TIMEOUT [60] seconds
#   KAFKA_EXTRA_CONFIG  extra server.properties lines (newline separated), appended last
#   JAVA [java]  MVN [mvn]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
case "$KAFKA_VERSION" in
  4.0.*|4.1.*) default_log4j=2.24.3 ;;
  4.2.*) default_log4j=2.25.3 ;;
  4.3.*) default_log4j=2.25.4 ;;
  *) default_log4j=2.25.5 ;;
esac
LOG4J_VERSION="${LOG4J_VERSION:-$default_log4j}"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
CACHE_ROOT="${ICEWATCH_CACHE:-$HOME/.cache/icewatch}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
KAFKA_DIR="${KAFKA_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/icewatch/kafka}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
# Upstream's G1 settings plus C1-only JIT (TieredStopAtLevel=1): a local/test broker needs a fast
# start more than peak throughput; measured here it halves the CPU time to "ready" (~5.3 -> ~2.7 s).
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -XX:TieredStopAtLevel=1 -Djava.awt.headless=true}"
KAFKA_CDS="${KAFKA_CDS:-1}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"

CONFIG="$KAFKA_DIR/server.properties"
LOG4J_CONFIG="$KAFKA_DIR/log4j2.properties"
DATA_DIR="$KAFKA_DIR/data"
LOG_DIR="$KAFKA_DIR/logs"
PID_FILE="$KAFKA_DIR/kafka.pid"
CDS_PENDING="$KAFKA_DIR/.cds_pending"

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: ERROR: $*" >&2; exit 1; }

fetch() {
  if [[ -f "$KAFKA_HOME/.complete" ]]; then
    say "jars for Kafka $KAFKA_VERSION already in $LIBS"
    return 0
  fi
  command -v "$MVN" >/dev/null || die "'$MVN' not found; install Maven (apt-get install -y maven)"
  mkdir -p "$CACHE_ROOT"
  # One fetch at a time per version (parallel test sessions share the cache).
  exec 8>"$CACHE_ROOT/.kafka-$KAFKA_VERSION.lock"
  flock 8
  if [[ -f "$KAFKA_HOME/.complete" ]]; then
    say "jars for Kafka $KAFKA_VERSION already in $LIBS"
    exec 8>&-
    return 0
  fi
  say "fetching Kafka $KAFKA_VERSION (log4j $LOG4J_VERSION) from Maven Central into $LIBS"
  local staging="$KAFKA_HOME.tmp.$$"
  rm -rf "$staging"
  mkdir -p "$staging"
  local started=$SECONDS
  if ! "$MVN" -q -B -Dstyle.color=never -f "$HERE/kafka/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
      -DincludeScope=runtime -DoutputDirectory="$staging/libs" ${MVN_ARGS:-} 2>&1 \
      | sed -u $'s/\e\\[[0-9;]*m//g'; then  # Maven 3.8 prints colour resets even with -B
    rm -rf "$staging"
    die "mvn could not resolve kafka_2.13:$KAFKA_VERSION (see the Maven output above)"
  fi
  ls "$staging/libs"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 \
    || { rm -rf "$staging"; die "kafka_2.13-$KAFKA_VERSION.jar missing after the fetch"; }
  echo "$KAFKA_VERSION log4j=$LOG4J_VERSION fetched=$(date -u +%FT%TZ)" >"$staging/.complete"
  rm -rf "$KAFKA_HOME"
  mv "$staging" "$KAFKA_HOME"
  exec 8>&-
  say "fetched $(ls "$LIBS" | wc -l) jars in $((SECONDS - started))s"
}

# PID from the PID file when that process is our broker (guards against PID reuse).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$CONFIG"* ]] || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_config() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  cat >"$CONFIG" <<EOF
# Generated by deploy/local/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
${KAFKA_EXTRA_CONFIG:-}
EOF
  cat >"$LOG4J_CONFIG" <<'EOF'
# Generated by deploy/local/kafka.sh: one plain file, no rotation.
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
EOF
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    return 0
  fi
  local cluster_id
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  say "formatting $DATA_DIR (cluster id $cluster_id)"
  if ! "$JAVA" -Xmx256m -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
      -Dkafka.logs.dir="$LOG_DIR" kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$CONFIG" >"$LOG_DIR/format.log" 2>&1; then
    cat "$LOG_DIR/format.log" >&2
    die "storage format failed (log: $LOG_DIR/format.log)"
  fi
}

# Class-data sharing: JVM options for this start (map the archive, or record one at exit).
cds_archive() {
  local build
  build="$("$JAVA" -Xshare:off -XX:-UsePerfData -version 2>&1 | tr -c 'A-Za-z0-9.+-' '_' | md5sum | cut -c1-12)"
  echo "$KAFKA_HOME/cds-$build.jsa"
}

cds_opts() {
  [[ "$KAFKA_CDS" == 1 ]] || return 0
  local archive
  archive="$(cds_archive)"
  if [[ -s "$archive" ]]; then
    echo "-XX:SharedArchiveFile=$archive -Xlog:cds=off -Xlog:cds+dynamic=off"
  else
    local pending="$archive.tmp.$$"
    echo "$pending $archive" >"$CDS_PENDING"
    echo "-XX:ArchiveClassesAtExit=$pending -Xlog:cds=off -Xlog:cds+dynamic=off"
  fi
}

# After the broker exited: publish an archive it recorded (atomic rename; last writer wins).
cds_publish() {
  [[ -f "$CDS_PENDING" ]] || return 0
  local pending archive
  read -r pending archive <"$CDS_PENDING" || true
  rm -f "$CDS_PENDING"
  if [[ -n "${pending:-}" && -s "$pending" ]]; then
    mv -f "$pending" "$archive" && say "recorded class-data archive $archive"
  else
    rm -f "${pending:-/nonexistent}"
  fi
}

fail_start() {
  echo "kafka.sh: ERROR: $1" >&2
  for f in "$LOG_DIR/stdout.log" "$LOG_DIR/server.log"; do
    [[ -f "$f" ]] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}

start() {
  local pid
  if pid="$(running_pid)"; then
    if port_open "$KAFKA_PORT"; then
      say "already running (pid $pid, 127.0.0.1:$KAFKA_PORT)"
      return 0
    fi
    say "process $pid is up but 127.0.0.1:$KAFKA_PORT does not answer yet; waiting"
  else
    command -v "$JAVA" >/dev/null || die "'$JAVA' not found; Kafka $KAFKA_VERSION needs Java 17+"
    fetch
    if port_open "$KAFKA_PORT"; then
      die "127.0.0.1:$KAFKA_PORT is already taken by another process"
    fi
    write_config
    format_storage
    touch "$LOG_DIR/server.log"
    local log_offset
    log_offset="$(stat -c %s "$LOG_DIR/server.log")"
    echo "$log_offset" >"$KAFKA_DIR/.log_offset"
    say "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), dir $KAFKA_DIR"
    rm -f "$CDS_PENDING"
    local cds
    cds="$(cds_opts)"
    # setsid: the broker outlives this script and the caller's terminal/process group.
    # shellcheck disable=SC2086
    setsid "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS $cds \
      -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
      -cp "$LIBS/*" kafka.Kafka "$CONFIG" </dev/null >>"$LOG_DIR/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
  fi
  local offset deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  offset="$(cat "$KAFKA_DIR/.log_offset" 2>/dev/null || echo 0)"
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      fail_start "the broker exited during start"
    fi
    if port_open "$KAFKA_PORT" \
        && grep -q "Kafka Server started" < <(tail -c +"$((offset + 1))" "$LOG_DIR/server.log"); then
      say "ready (pid $pid) after $((SECONDS + KAFKA_START_TIMEOUT - deadline))s: bootstrap 127.0.0.1:$KAFKA_PORT"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      fail_start "not ready after ${KAFKA_START_TIMEOUT}s (pid $pid left running; run kafka.sh stop)"
    fi
    sleep 0.2
  done
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    cds_publish
    say "not running"
    return 0
  fi
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$CDS_PENDING"  # an archive cut short by SIGKILL is not published
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  cds_publish
  say "stopped"
}

status() {
  local pid
  if ! pid="$(running_pid)"; then
    say "not running (dir $KAFKA_DIR)"
    return 3
  fi
  if port_open "$KAFKA_PORT"; then
    say "running (pid $pid), bootstrap 127.0.0.1:$KAFKA_PORT, dir $KAFKA_DIR"
    return 0
  fi
  say "process $pid is alive but 127.0.0.1:$KAFKA_PORT does not answer"
  return 1
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 {fetch|start|stop|status}" >&2; exit 2 ;;
esac
