"""Fixes to the embedded moto server where it is too slow to run Sunflower's real workloads.

- TransactWriteItems deep-copies the whole table, once per item of the transaction, to be able to
  roll back: a 100-item transaction on a table of 100k items copies 10 million items, so a bulk
  import slows down quadratically as the table fills. The replacement keeps moto's behaviour (the
  same checks, errors and all-or-nothing outcome) but copies only the items it touches.
- Queries and scans iterate the table's item dicts while other requests (moto serves each on a
  thread of its own) insert into them: "dictionary changed size during iteration", an HTTP 500.
  They now iterate over a snapshot (list() copies a dict's values without letting another thread run).
- Every conditional write parses its condition expression again (three times per transaction
  item): half of moto's time in a bulk import. Parsed expressions are now reused; the parse tree
  depends only on the expression, its names and its values, and evaluating it changes nothing.
- Every Query sorts the whole table, then keeps the items of the one partition it asked for: on an
  office table of 60k items, a query of the 500 due timers took seconds. A query of the table now
  reads only its partition, and a query of an index the items unsorted (moto sorts what it keeps).
- Conditional writes and transactions are made indivisible with one lock (see apply()).
"""

import copy
import json
import logging
import threading
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)
_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    try:
        from moto.dynamodb import comparisons
        from moto.dynamodb import models as dynamodb_models
        from moto.dynamodb.exceptions import (
            ConditionalCheckFailed,
            MockValidationException,
            MultipleTransactionsException,
            TooManyTransactionsException,
            TransactionCanceledException,
            TransactWriteSingleOpException,
        )
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models import table as table_module
        from moto.dynamodb.models.table import Table
    except ImportError:  # another moto: leave it as it is, only slower
        logger.warning("moto's DynamoDB internals moved; TransactWriteItems stays unpatched (slow on big tables)")
        return

    parse = comparisons.get_filter_expression

    @lru_cache(maxsize=1024)
    def parsed(expr: str, names: str, values: str) -> Any:
        return parse(expr, json.loads(names), json.loads(values))

    def get_filter_expression(expr: Any, names: Any, values: Any) -> Any:
        if not expr:
            return parse(expr, names, values)
        try:
            key = (expr, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
        except TypeError:  # not plain JSON: parse as moto does
            return parse(expr, names, values)
        return parsed(*key)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        saved: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, item before or None)
        target_items: set[tuple[str, str]] = set()

        def rollback() -> None:
            for table, hash_value, range_value, before in reversed(saved):
                if before is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = before
                else:
                    table.items[hash_value] = before

        def check_unicity(table_name: str, key: dict[str, Any]) -> None:
            item = (str(table_name), str(dict(sorted(key.items()))))
            if item in target_items:
                raise MultipleTransactionsException()
            target_items.add(item)

        errors: list[tuple[Any, Any, Any]] = []
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                table = self.get_table(table_name)
                if op_type == "Put":
                    attrs = op["Item"]
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                check_unicity(table_name, key)
                current = self.get_item(table_name, key)
                if condition_expression is not None:
                    condition_op = get_filter_expression(condition_expression, names, values)
                    if not condition_op.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                if op_type != "ConditionCheck":
                    hash_value, range_value = self.get_keys_value(table, key)
                    saved.append((table, hash_value, range_value, copy.deepcopy(current)))
                if op_type == "Put":
                    self.put_item(
                        table_name, op["Item"], condition_expression=condition_expression,
                        expression_attribute_names=names, expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name, key, condition_expression=condition_expression,
                        expression_attribute_names=names, expression_attribute_values=values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name, key, update_expression=op["UpdateExpression"],
                        condition_expression=condition_expression,
                        expression_attribute_names=names, expression_attribute_values=values,
                    )
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                rollback()
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 - moto reports any other failure per item, as here
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            rollback()
            raise TransactionCanceledException(errors)

    scope = threading.local()  # the items the query running on this thread may consider

    def unsorted_items(self: Any) -> list[Any]:
        items: list[Any] = []
        for hash_set in list(self.items.values()):
            if self.range_key_attr:
                items.extend(list(hash_set.values()))
            else:
                items.append(hash_set)
        return items

    def all_items(self: Any) -> list[Any]:
        if getattr(scope, "table", None) is self:
            return scope.items
        items = unsorted_items(self)
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    original_query = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index_name is None and hash_key is not None and self.range_key_attr:
            partition = self.items.get(hash_key)  # a defaultdict: get() adds no empty partition
            scope.items = list(partition.values()) if partition else []
        else:
            scope.items = unsorted_items(self)
        scope.table = self
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            scope.table = scope.items = None

    def has_idx_items(self: Any, index_name: str) -> list[Any]:
        index = self.get_index(index_name)
        needed = {i["AttributeName"] for i in index.schema}
        items: list[Any] = []
        for hash_set in list(self.items.values()):
            for item in list(hash_set.values()) if self.range_key_attr else [hash_set]:
                if needed.issubset(set(item.attrs)):
                    items.append(item)
        return items

    for module in (comparisons, dynamodb_models, table_module):
        module.get_filter_expression = get_filter_expression
    DynamoDBBackend.transact_write_items = transact_write_items
    # DynamoDB applies a conditional write or a transaction atomically; moto checks, then writes,
    # on whichever request thread it is on, so two requests could both pass one condition. One
    # lock around every write makes each check-and-write indivisible, as it is in the cloud.
    writes = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name), writes))
    Table.all_items = all_items
    Table.query = query
    Table.has_idx_items = has_idx_items
    _applied = True


def _serialised(method: Any, lock: Any) -> Any:
    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(self, *args, **kwargs)

    serialised.__wrapped__ = method
    return serialised
