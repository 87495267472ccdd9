#!/bin/bash
# The official distribution's launcher, reduced to what this image's scripts use.
if [[ -n "${LOG_DIR:-}" ]]; then mkdir -p "$LOG_DIR" 2>/dev/null || true; fi
# shellcheck disable=SC2086 # the *_OPTS variables hold several words
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent} \
  -Djava.awt.headless=true \
  ${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/etc/kafka/docker/log4j2.properties} \
  ${KAFKA_OPTS:-} -cp "/opt/kafka/libs/*" "$@"
