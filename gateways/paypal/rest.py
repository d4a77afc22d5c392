"""Calls to PayPal REST endpoints the server SDK has no controller for (Catalog Products v1, Disputes v1,
the v1 sale read), built with the SDK's own request plumbing.

Going through `apimatic_core`'s `RequestBuilder` with the SDK's `Oauth2` auth means these calls share the SDK's
cached OAuth token, its HTTP session and timeout, `PayPalClient`'s stale-token retry and worker-thread limiter,
and `errors.translate` (a non-2xx answer raises the SDK's `ApiException`). A second HTTP client (httpx) would
need its own token cache and error mapping. Nothing here parses answers: callers read `response.text`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from apimatic_core.authentication.multiple.single_auth import Single
from apimatic_core.request_builder import RequestBuilder
from apimatic_core.response_handler import ResponseHandler
from apimatic_core.types.parameter import Parameter
from paypalserversdk.api_helper import APIHelper
from paypalserversdk.configuration import Server
from paypalserversdk.controllers.base_controller import BaseController
from paypalserversdk.http.http_method_enum import HttpMethodEnum


class RestCalls(BaseController):  # type: ignore[misc]  # the SDK is untyped
    """One generic endpoint call: `send("POST", "/v1/catalogs/products", body=..., request_id=...)`."""

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        request_id: str | None = None,
        multipart_json: Mapping[str, Any] | None = None,
    ) -> Any:
        """`multipart_json` sends a multipart/form-data body with one `input` part holding that JSON (as PayPal's
        dispute endpoints take their JSON beside optional documents)."""
        builder = (
            RequestBuilder()
            .server(Server.DEFAULT)
            .path(path)
            .http_method(getattr(HttpMethodEnum, method))
            .header_param(Parameter().key("accept").value("application/json"))
            .auth(Single("Oauth2"))
        )
        for name, value in (query or {}).items():
            builder = builder.query_param(Parameter().key(name).value(value))
        if request_id is not None:
            builder = builder.header_param(Parameter().key("PayPal-Request-Id").value(request_id))
        if body is not None:
            builder = (
                builder.header_param(Parameter().key("Content-Type").value("application/json"))
                .body_param(Parameter().value(dict(body)))
                .body_serializer(APIHelper.json_serialize)
            )
        if multipart_json is not None:
            builder = builder.multipart_param(
                Parameter().key("input").value(json.dumps(multipart_json)).default_content_type("application/json")
            )
        return super().new_api_call_builder.request(builder).response(ResponseHandler().is_api_response(True)).execute()


def rest_calls(sdk: Any) -> RestCalls:
    """A `RestCalls` sharing `sdk`'s configuration, auth managers and HTTP session."""
    return RestCalls(sdk.global_configuration)
