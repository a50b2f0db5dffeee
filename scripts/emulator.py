"""The S3/DynamoDB/SQS emulator of raptr's tests and demo: moto's server on
127.0.0.1, on a free port.

Prints `port N` once it listens, then serves until its standard input
closes: the process that started it holds the other end, so the emulator
stops when that process ends, whether it finished, failed or was killed.

moto handles concurrent requests on threads without locking its state, so
a conditional write can interleave with another write, and a failed
DynamoDB transaction restores a snapshot that drops writes made meanwhile.
AWS does neither. The server therefore handles one request at a time (over
many kept-alive connections), which makes every request atomic, as on AWS.

moto's TransactWriteItems also deep-copies the whole table once per item to
be able to roll back, so each transaction costs time in proportion to the
table's size. With requests one at a time, checking every condition first
and writing only if all hold gives DynamoDB's all-or-nothing result without
a copy: `transact_write_items` below does that.

moto's S3 event records carry no userIdentity; AWS's carry the principal
that made the request (`AWS:<user id>`), which raptr's reports name as the
uploader. `s3_event_with_principal` below adds it, from the access key that
signed the request.

    python scripts/emulator.py [PORT]      # 0 or nothing: any free port
"""

import logging
import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.iam.models import iam_backends
from moto.s3 import notifications as s3_notifications
from werkzeug.serving import make_server


def transact_write_items(self, transact_items):
    """All conditions against the state before the transaction, then all
    writes, or none (requests are serialized, so nothing runs in between)."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    targets = set()
    errors = []
    plan = []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table_name = op["TableName"]
        if op_type == "Put":
            table = self.get_table(table_name)
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        target = (table_name, str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        current = self.get_item(table_name, key)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
            condition,
            op.get("ExpressionAttributeNames"),
            op.get("ExpressionAttributeValues"),
        ).expr(current):
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            errors.append((None, None, None))
        plan.append((op_type, op, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    for op_type, op, key in plan:
        common = dict(
            condition_expression=op.get("ConditionExpression"),
            expression_attribute_names=op.get("ExpressionAttributeNames"),
            expression_attribute_values=op.get("ExpressionAttributeValues"),
        )
        if op_type == "Put":
            self.put_item(op["TableName"], op["Item"], **common)
        elif op_type == "Delete":
            self.delete_item(op["TableName"], key, **common)
        elif op_type == "Update":
            self.update_item(
                op["TableName"], key, update_expression=op["UpdateExpression"], **common
            )


DynamoDBBackend.transact_write_items = transact_write_items


# The access key that signed the request being handled (requests are
# handled one at a time), for the principal of the S3 events it causes.
current_key = None


def principal_of(access_key):
    """`AWS:<user id>` for an IAM user's key, as S3 events carry it in
    userIdentity.principalId; `AWS:<key>` for a key no user holds (the
    emulator's default credentials, when IAM is not enforced)."""
    if access_key is None:
        return "AWS:anonymous"
    for account in list(iam_backends.keys()):
        for backend in iam_backends[account].values():
            for user in backend.users.values():
                if any(k.access_key_id == access_key for k in user.access_keys):
                    return f"AWS:{user.id}"
    return f"AWS:{access_key}"


def s3_event_with_principal(event_name, bucket, key, notification_id):
    """moto's S3 event record, with the userIdentity AWS puts in it."""
    event = moto_get_s3_event(event_name, bucket, key, notification_id)
    for record in event["Records"]:
        record["userIdentity"] = {"principalId": principal_of(current_key)}
    return event


moto_get_s3_event = s3_notifications._get_s3_event
s3_notifications._get_s3_event = s3_event_with_principal


def signing_key(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        return auth.split("Credential=", 1)[1].split("/", 1)[0]
    query = environ.get("QUERY_STRING", "")
    if "X-Amz-Credential=" in query:
        return query.split("X-Amz-Credential=", 1)[1].split("%2F", 1)[0].split("/", 1)[0]
    return None


def serialized(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        global current_key
        with lock:
            current_key = signing_key(environ)
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return handle


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = serialized(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port {server.server_address[1]}", flush=True)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except KeyboardInterrupt:
        pass
    # Exit at once: the server's worker threads must not keep us alive.
    os._exit(0)


if __name__ == "__main__":
    main()
