"""moto's standalone server with one speed fix, for benchmarks only (the tests run moto unmodified).

moto's ReceiveMessage recomputes every queue attribute (several passes over all messages) for each message it
considers, only to read the retention period; with a thousand messages queued it serves ~20 messages/s. The fix
reads the retention period directly. Behaviour is unchanged.

    python benchmarks/fast_moto.py -H 127.0.0.1 -p 5000
"""

import sys

from moto.core.utils import unix_time
from moto.server import main
from moto.sqs.models import SQSBackend


def _valid_by_retention(self, queue_name, message):
    queue = self.get_queue(queue_name)
    return int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time()


SQSBackend.is_message_valid_based_on_retention_period = _valid_by_retention

if __name__ == "__main__":
    main(sys.argv[1:])
