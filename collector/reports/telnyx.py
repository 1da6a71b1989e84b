from __future__ import annotations
from collector.contract import CallReport
from collector.reports.context import UploadContext
def parse(document: object, ctx: UploadContext) -> list[CallReport]:
    raise NotImplementedError
