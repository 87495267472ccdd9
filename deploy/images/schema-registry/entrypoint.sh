#!/bin/sh
# Starts the registry as the official image's run-java.sh does, for the settings this project uses:
#   JAVA_MAX_MEM_RATIO  (50)  maximum heap, in percent of the container's memory limit
#   JAVA_OPTS_APPEND          more JVM options (-Xmx256m wins over the ratio)
# Every other setting is Quarkus' or Apicurio's own variable (QUARKUS_*, APICURIO_*). java is PID
# 1, so SIGTERM reaches it and Quarkus shuts down cleanly.
set -eu
# shellcheck disable=SC2086 # JAVA_OPTS_APPEND holds several words
exec java -XX:MaxRAMPercentage="${JAVA_MAX_MEM_RATIO:-50}" \
  -Dquarkus.http.host=0.0.0.0 -Djava.util.logging.manager=org.jboss.logmanager.LogManager \
  ${JAVA_OPTS_APPEND:-} -jar /deployments/quarkus-run.jar "$@"
