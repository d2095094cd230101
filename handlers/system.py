"""/api/sysinfo, /api/db_stats, /api/enum_types."""

from broker.runtime.stats import db_stats, sysinfo
from models.enums import ENUM_TYPES

from .base import BaseHandler, endpoint


class SysInfoHandler(BaseHandler):
    @endpoint("Retrieve system/deployment info", tags="system_info")
    def get(self):
        self.success(sysinfo(self.config))


class DBStatsHandler(BaseHandler):
    @endpoint("Retrieve basic DB statistics", tags="system_info", acls=("System admin",))
    def get(self):
        with self.session() as session:
            self.success(db_stats(session))


class EnumTypesHandler(BaseHandler):
    @endpoint("Retrieve enum types in the DB", tags="system_info")
    def get(self):
        self.success({k: list(v) for k, v in ENUM_TYPES.items()})
