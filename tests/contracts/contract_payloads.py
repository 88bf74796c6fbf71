"""Realistic wire payloads of every plugin route, in canonical form (no nulls).

Shapes come from `plugin-contract.md` and the SDK's own tests (BatchedAudienceFeedConnector,
AudienceFeedConnector); each payload must survive parse -> `to_wire` unchanged.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

USER_POINT: JSON = {
    "type": "USER_POINT",
    "user_point_id": "26340584-f777-404c-82c5-56220667464b",
    "creation_ts": 1493118667529,
}
USER_ACCOUNT: JSON = {
    "type": "USER_ACCOUNT",
    "user_account_id": "914eb2aa50cef7f3a8705b6bb54e50bb",
    "creation_ts": 1493118667529,
    "compartment_id": 1623,
}
USER_EMAIL: JSON = {
    "type": "USER_EMAIL",
    "hash": "e2749f6f4d8104ec385a75490b587c86",
    "creation_ts": 1493118667529,
    "last_activity_ts": 1493127642622,
    "providers": [],
}
USER_AGENT: JSON = {
    "type": "USER_AGENT",
    "vector_id": "vec:886742516",
    "device": {
        "form_factor": "PERSONAL_COMPUTER",
        "os_family": "MAC_OS",
        "browser_family": "CHROME",
    },
    "creation_ts": 1493118667529,
    "last_activity_ts": 1493126966889,
    "providers": [{"technical_name": "mediarithmics", "creation_ts": 1493118667529}],
    "mappings": [
        {
            "user_agent_id": "web:1:abc",
            "realm_name": "shop.example",
            "last_activity_ts": 1493126966889,
        }
    ],
}
USER_DEVICE_POINT: JSON = {
    "type": "USER_DEVICE_POINT",
    "id": "udp:-123456",
    "creation_ts": 1493118667529,
    "last_activity_ts": 1493126966889,
    "technical_identifiers": [
        {
            "type": "MOBILE_ADVERTISING_ID",
            "user_agent_id": "mob:ios:raw:6d92078a-8246-4ba4-ae5b-76104861e7dc",
            "registry_id": "12",
            "creation_ts": 1493118667529,
            "last_activity_ts": 1493126966889,
        },
        {
            "type": "IP_V4_ADDRESS_ID",
            "user_agent_id": "net:v4:192.0.2.1",
            "registry_id": "13",
            "creation_ts": 1493118667529,
            "last_activity_ts": 1493126966889,
            "expiration_ts": 1593118667529,
        },
    ],
}
FIVE_IDENTIFIERS: list[JSON] = [USER_POINT, USER_ACCOUNT, USER_EMAIL, USER_AGENT, USER_DEVICE_POINT]

USER_PROFILE: JSON = {
    "$compartment_id": "1623",
    "$creation_ts": 1493118667529,
    "$last_modified_ts": 1493126966889,
    "$user_account_id": "914eb2aa50cef7f3a8705b6bb54e50bb",
    "first_name": "Ada",
    "loyalty": {"tier": "gold"},
}

STRING_PROPERTY: JSON = {
    "technical_name": "partner_account_id",
    "value": {"value": "acc-1"},
    "property_type": "STRING",
    "origin": "INSTANCE",
    "writable": True,
    "deletable": False,
}

BATCH_CONTEXT: JSON = {
    "endpoint": "/v1/user_segment_update",
    "feed_id": "42",
    "feed_session_id": "43",
    "segment_id": "451256",
    "datamart_id": "1023",
    "grouping_key": "451256_42",
}

REQUESTS: dict[str, list[JSON]] = {
    "external_segment_creation": [
        {"feed_id": "42", "datamart_id": "1023", "segment_id": "451256"},
        {
            "feed_id": "42",
            "datamart_id": "1023",
            "segment_id": "451256",
            "feed_destination_id": "7",
        },
    ],
    "external_segment_connection": [
        {"feed_id": "42", "datamart_id": "1023", "segment_id": "451256"},
    ],
    "user_segment_update": [
        {
            "feed_id": "42",
            "session_id": "43",
            "datamart_id": "1023",
            "segment_id": "451256",
            "ts": 1254412,
            "operation": "UPSERT",
            "user_identifiers": FIVE_IDENTIFIERS,
            "user_profiles": [USER_PROFILE],
        },
        {
            "feed_id": "42",
            "session_id": "43",
            "datamart_id": "1023",
            "segment_id": "451256",
            "feed_destination_id": "7",
            "preset_id": "9",
            "ts": 1254413,
            "operation": "DELETE",
            "user_identifiers": [USER_EMAIL],
            "user_profiles": [],
        },
    ],
    "batch_update": [
        {
            "batch_content": [
                '{"uuid":"1234","user_list":123}',
                '{"uuid":"1235","user_list":123}',
            ],
            "ts": 1700000000000,
            "context": BATCH_CONTEXT,
        },
        {
            "batch_content": [
                {"uuid": "1234", "user_list": 123},
                {"uuid": "1235", "user_list": 123},
            ],
            "ts": 1700000000001,
            "context": {**BATCH_CONTEXT, "feed_destination_id": "7"},
        },
        {"batch_content": [], "ts": 1700000000002, "context": BATCH_CONTEXT},
    ],
    "troubleshoot": [
        {
            "feed_id": "1000",
            "datamart_id": "1",
            "segment_id": "100",
            "action": "FETCH_DESTINATION_AUDIENCE",
        },
        {"feed_id": "1000", "datamart_id": "1", "segment_id": "100", "action": "SOMETHING_NEW"},
    ],
    "authentication_status": [
        {"datamart_id": "1023", "plugin_version_id": "55", "user_id": "u1"},
        {
            "segment_id": "451256",
            "datamart_id": "1023",
            "plugin_version_id": "55",
            "user_id": "u1",
            "properties": [STRING_PROPERTY],
        },
    ],
    "authentication": [
        {
            "user_id": "u1",
            "plugin_version_id": "55",
            "params": {"code": "c0de", "state": "s7a7e"},
            "feed_destination_id": "7",
        },
        {"user_id": "u1", "plugin_version_id": "55"},
    ],
    "logout": [{"user_id": "u1", "plugin_version_id": "55", "datamart_id": "1023"}],
    "dynamic_property_values": [
        {"datamart_id": "1023", "user_id": "u1"},
        {
            "segment_id": "451256",
            "datamart_id": "1023",
            "user_id": "u1",
            "properties": [STRING_PROPERTY],
            "feed_destination_id": "7",
        },
    ],
    "test_authentication": [{"feed_destination_id": "7"}],
    "oauth_redirect_url": [{"feed_destination_id": "7", "plugin_version_id": "55"}],
    "log_level_put": [{"level": "DEBUG"}],
}

RESPONSES: dict[str, list[JSON]] = {
    "external_segment_creation": [
        {"status": "ok", "visibility": "PUBLIC"},
        {"status": "error", "message": "partner_account_id is mandatory", "visibility": "PRIVATE"},
    ],
    "external_segment_connection": [
        {"status": "ok"},
        {"status": "external_segment_not_ready_yet", "message": "partner segment is not ready yet"},
    ],
    "user_segment_update": [
        {
            "status": "ok",
            "data": [
                {
                    "type": "BATCH_DELIVERY",
                    "content": {
                        "uuid": "26340584-f777-404c-82c5-56220667464b",
                        "user_list": 123,
                    },
                    "grouping_key": "UPSERT",
                },
                {"type": "BATCH_DELIVERY", "content": "my_string", "grouping_key": "g"},
            ],
            "stats": [
                {
                    "identifier": "e2749f6f4d8104ec385a75490b587c86",
                    "sync_result": "PROCESSED",
                    "tags": [{"key": "kind", "value": "email"}],
                }
            ],
            "message": "test_update",
        },
        {
            "status": "ok",
            "data": [
                {
                    "type": "FILE_DELIVERY",
                    "content": "e2749f6f4d8104ec385a75490b587c86\n",
                    "grouping_key": "451256_42",
                    "destination_token": "sftp://partner/inbox",
                }
            ],
        },
        {"status": "retry", "message": "rate limited", "next_msg_delay_in_ms": 60000},
        {"status": "no_eligible_identifier"},
    ],
    "batch_update": [
        {"status": "OK", "sent_items_in_success": 3, "sent_items_in_error": 0},
        {
            "status": "ERROR",
            "sent_items_in_success": 0,
            "sent_items_in_error": 3,
            "message": "segment deleted",
        },
        {
            "status": "RETRY",
            "sent_items_in_success": 0,
            "sent_items_in_error": 3,
            "next_msg_delay_in_ms": 30000,
        },
    ],
    "troubleshoot": [
        {
            "status": "ok",
            "message": "Here is the destination audience!",
            "data": {
                "destination_audience": {"id": "1", "name": "myExternalAudience"},
                "match_rate": None,
            },
        },
        {"status": "not_implemented"},
    ],
    "authentication_status": [
        {
            "status": "not_authenticated",
            "message": "No credentials found",
            "data": {
                "login_url": "https://partner.example/oauth/authorize?state=abc",
                "expires_in": 600,
            },
        },
        {"status": "authenticated", "message": "User u1 is authenticated."},
    ],
    "authentication": [{"status": "ok"}, {"status": "error", "message": "bad state"}],
    "logout": [{"status": "ok", "message": "Successfully logged out user u1."}],
    "dynamic_property_values": [
        {
            "status": "ok",
            "message": "Successfully retrieved 2 partner accounts",
            "data": [
                {
                    "property_technical_name": "partner_account_id",
                    "enum": [
                        {"label": "Account one", "value": "acc-1"},
                        {"label": "Account two", "value": "acc-2"},
                    ],
                }
            ],
        },
        {"status": "empty"},
    ],
    "test_authentication": [
        {"status": "ok"},
        {"status": "invalid_credentials", "message": "refresh token revoked"},
    ],
    "oauth_redirect_url": [
        {"login_url": "https://partner.example/oauth/authorize?feed_destination_id=7&state=xyz"}
    ],
    "log_level_get": [{"level": "INFO"}],
    "metadata": [
        {
            "runtime": "node",
            "runtime_version": "v18.19.0",
            "group_id": "com.mediarithmics.audience.externalfeed",
            "artifact_id": "partner-connector",
            "plugin_type": "AUDIENCE_SEGMENT_EXTERNAL_FEED",
            "plugin_version": "1.2.0",
            "plugin_build": "42",
            "dependencies": {"@mediarithmics/plugins-nodejs-sdk": "0.41.0"},
        }
    ],
}
