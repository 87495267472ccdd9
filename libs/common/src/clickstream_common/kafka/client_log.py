"""The logger handed to every librdkafka client (its `logger` setting).

Only librdkafka's own log lines go out under the name `librdkafka`, routed by the standard library
into the service's one log stream (`clickstream_common.logging`); what the adapters themselves log
goes under their module's name.
"""

from __future__ import annotations

import logging

LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
