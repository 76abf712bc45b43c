"""The OpenAPI document's operations: each has one stable operationId and a tag, so client
generators keep their method names from one release to the next."""

from __future__ import annotations

from api.openapi import openapi_document

# operationIds clients may already use: they must not change (new operations may be added).
PUBLISHED_IDS = {
    "getHealth", "listServices", "getServicesByCode", "listOrganizations", "postServiceRequests", "listServiceRequests",
    "getServiceRequestsById", "getServiceRequestsEvents", "getPaymentsById", "getPaymentsQr", "postPaymentsRecordCash",
    "getOrganizationsWorkQueue", "getOrganizationsDailyCounts", "listJobs", "postPaymentNotificationsByProvider",
    "getAuditEvents", "getAuditExport", "getAuditVerify", "getStreamsEvents", "getStreamsEventsLive", "postSubscriptions",
    "listSubscriptions", "getSubscriptionsById", "deleteSubscriptionsById", "getSubscriptionsDeliveries",
    "postSubscriptionsReplay", "postServiceRequestsAssign", "postServiceRequestsRequestInfo", "postServiceRequestsProvideInfo",
    "postServiceRequestsApprove", "postServiceRequestsReject", "postServiceRequestsComplete", "postServiceRequestsWithdraw",
    "postServiceRequestsAssessFee", "postServiceRequestsRetry", "createStreamTicket", "getDocs", "getDocsAsset",
}


def operations() -> list[tuple[str, str, dict]]:
    return [(method, path, operation) for path, item in openapi_document()["paths"].items() for method, operation in item.items()]


def test_every_operation_has_an_operation_id_and_no_two_share_one() -> None:
    ids = [operation.get("operationId") for _, _, operation in operations()]
    assert all(ids), [f"{m} {p}" for m, p, o in operations() if not o.get("operationId")]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []


def test_operation_ids_already_published_are_still_there_for_the_same_operations() -> None:
    ids = {operation["operationId"]: (method, path) for method, path, operation in operations()}
    assert PUBLISHED_IDS - set(ids) == set()
    assert ids["listServiceRequests"] == ("get", "/v1/service-requests")
    assert ids["getServiceRequestsById"] == ("get", "/v1/service-requests/{id}")
    assert ids["createStreamTicket"] == ("post", "/v1/streams/tickets")


def test_every_operation_has_a_tag_the_document_describes() -> None:
    described = {tag["name"] for tag in openapi_document()["tags"]}
    for method, path, operation in operations():
        assert operation.get("tags"), f"{method} {path} has no tag"
        assert set(operation["tags"]) <= described, f"{method} {path}: {operation['tags']}"


def test_every_paged_list_documents_its_link_header() -> None:
    for method, path, operation in operations():
        ok = operation["responses"].get("200", {})
        properties = ok.get("content", {}).get("application/json", {}).get("schema", {}).get("properties", {})
        if "next_cursor" in properties:
            assert "Link" in ok.get("headers", {}), f"{method} {path} pages with next_cursor but documents no Link"
