"""Request body parsing for the APIs: JSON nested deeper than the parser can follow is a 400, not a RecursionError
(a 500). (A body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused by Django before parsing: 413, cells.api.errors.)"""
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None
