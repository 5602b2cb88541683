"""The event data: the contract's schema, its rules, the container and its files."""

from riskscore.data.container import EventData
from riskscore.data.schema import TABLES, TIME_COLUMN

__all__ = ["TABLES", "TIME_COLUMN", "EventData"]
