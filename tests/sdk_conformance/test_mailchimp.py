"""mailchimp-marketing (Mailchimp's official Python SDK) against the Mailchimp sandbox, through
the calls the product makes (members upsert/get/archive, tags, merge fields, e-commerce stores,
customers, products and orders, list webhooks) and those a user of `ml-connector dev --sandbox`
would try (listing lists and members). The SDK returns decoded JSON, so each success is also
validated against the response schema of Mailchimp's OpenAPI document, and each error must raise
the SDK's ApiClientError with Mailchimp's problem document."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import jsonschema
import mailchimp_marketing
import pytest
from conftest import Control, test_the_loopback_guard_holds  # noqa: F401 (collected here)
from mailchimp_marketing.api_client import ApiClientError
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPEC_URI = "urn:mailchimp:marketing"


def escape(token):
    return token.replace("~", "~0").replace("/", "~1")


def nullable_to_null(value):
    """OpenAPI 3.0 `nullable: true` → a JSON-Schema null alternative (as the sandbox's spec.rs)."""
    if isinstance(value, dict):
        for v in value.values():
            nullable_to_null(v)
        if value.pop("nullable", False) is True and "type" in value:
            t = value["type"]
            value["type"] = [t, "null"] if isinstance(t, str) else list(t) + ["null"]
    elif isinstance(value, list):
        for v in value:
            nullable_to_null(v)


@pytest.fixture(scope="module")
def registry(sandbox):
    with open(sandbox["spec_path"], encoding="utf-8") as f:
        doc = json.load(f)
    nullable_to_null(doc)
    return Registry().with_resource(SPEC_URI, DRAFT4.create_resource(doc))


@pytest.fixture(scope="module")
def conforms(registry):
    """conforms(method, template, body): `body` matches the operation's 200 response schema."""
    def check(method, template, body, response="200"):
        pointer = f"/paths/{escape(template)}/{method.lower()}/responses/{response}/content/application~1json/schema"
        schema = {"$ref": f"{SPEC_URI}#{pointer}"}
        jsonschema.Draft4Validator(schema, registry=registry).validate(body)
        return body
    return check


@pytest.fixture(scope="module")
def conforms_error(conforms):
    """conforms_error(method, template, error): the ApiClientError's body is the operation's
    documented error (the `default` response, Mailchimp's problem document)."""
    def check(method, template, error):
        body = problem(error)
        conforms(method, template, body, response="default")
        for field in ("type", "title", "status", "detail", "instance"):
            assert field in body, field
        assert body["status"] == error.status_code
        return body
    return check


@pytest.fixture(scope="module")
def mc(sandbox):
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": sandbox["api_key"], "server": sandbox["server"]})
    # The SDK builds https://<server>.api.mailchimp.com/3.0; the host is its one override.
    client.api_client.host = sandbox["base_url"]
    return client


@pytest.fixture(scope="module")
def list_id(sandbox):
    return sandbox["list_id"]


@pytest.fixture(scope="module")
def control(sandbox):
    return Control(sandbox["root_url"])


def problem(error):
    """The problem document of an ApiClientError. Mailchimp answers errors as
    application/problem+json, which the SDK leaves as text (it decodes only application/json)."""
    return json.loads(error.text)


def h(email):
    return hashlib.md5(email.lower().encode()).hexdigest()


def test_ping(mc, conforms):
    conforms("GET", "/ping", mc.ping.get())


def test_get_list(mc, list_id, conforms):
    got = conforms("GET", "/lists/{list_id}", mc.lists.get_list(list_id))
    assert got["id"] == list_id


def test_list_fields(mc, list_id):
    got = mc.lists.get_list(list_id)
    for field in ("web_id", "date_created", "contact", "campaign_defaults", "permission_reminder",
                  "list_rating", "subscribe_url_short", "visibility", "double_optin"):
        assert field in got, field
    for field in ("member_count", "unsubscribe_count", "cleaned_count", "last_sub_date"):
        assert field in got["stats"], field


def test_member_upsert_get_tags_archive(mc, list_id, conforms):
    email = "ada@example.com"
    put = mc.lists.set_list_member(list_id, h(email), {
        "email_address": email, "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada"}})
    conforms("PUT", "/lists/{list_id}/members/{subscriber_hash}", put)
    assert put["status"] == "subscribed" and put["merge_fields"]["FNAME"] == "Ada"
    got = conforms("GET", "/lists/{list_id}/members/{subscriber_hash}", mc.lists.get_list_member(list_id, h(email)))
    assert got["email_address"] == email
    mc.lists.update_list_member_tags(list_id, h(email), {"tags": [{"name": "vip", "status": "active"}],
                                                        "is_syncing": True})
    tags = conforms("GET", "/lists/{list_id}/members/{subscriber_hash}/tags",
                    mc.lists.get_list_member_tags(list_id, h(email)))
    assert [t["name"] for t in tags["tags"]] == ["vip"]
    mc.lists.delete_list_member(list_id, h(email))
    assert mc.lists.get_list_member(list_id, h(email))["status"] == "archived"


def test_member_fields(mc, list_id):
    email = "fields@example.com"
    got = mc.lists.set_list_member(list_id, h(email), {
        "email_address": email, "status_if_new": "subscribed", "merge_fields": {"FNAME": "F", "LNAME": "L"}})
    for field in ("last_changed", "timestamp_opt", "timestamp_signup", "web_id", "full_name", "stats",
                  "source", "ip_opt", "language", "vip", "location", "email_client"):
        assert field in got, field
    assert got["full_name"] == "F L"
    assert got["last_changed"]


def test_boolean_query_as_the_sdk_sends_it(mc, list_id):
    # requests renders a Python bool as `True`.
    email = "bool@example.com"
    got = mc.lists.set_list_member(list_id, h(email), {"email_address": email, "status_if_new": "subscribed"},
                                   skip_merge_validation=True)
    assert got["status"] == "subscribed"


def test_update_existing_member_without_new_member_fields(mc, list_id):
    email = "existing@example.com"
    mc.lists.set_list_member(list_id, h(email), {"email_address": email, "status_if_new": "subscribed"})
    got = mc.lists.set_list_member(list_id, h(email), {"merge_fields": {"FNAME": "Later"}})
    assert got["merge_fields"]["FNAME"] == "Later" and got["status"] == "subscribed"


def test_add_and_patch_member(mc, list_id, conforms, conforms_error):
    email = "added@example.com"
    added = conforms("POST", "/lists/{list_id}/members", mc.lists.add_list_member(list_id, {
        "email_address": email, "status": "subscribed", "merge_fields": {"FNAME": "Ad"}}))
    assert added["id"] == h(email) and added["status"] == "subscribed" and added["source"]
    with pytest.raises(ApiClientError) as e:
        mc.lists.add_list_member(list_id, {"email_address": email, "status": "subscribed"})
    assert conforms_error("POST", "/lists/{list_id}/members", e.value)["title"] == "Member Exists"
    patched = conforms("PATCH", "/lists/{list_id}/members/{subscriber_hash}", mc.lists.update_list_member(
        list_id, h(email), {"merge_fields": {"LNAME": "Ded"}, "status": "unsubscribed"}))
    assert patched["merge_fields"]["FNAME"] == "Ad" and patched["merge_fields"]["LNAME"] == "Ded"
    assert patched["status"] == "unsubscribed" and patched["full_name"] == "Ad Ded"
    with pytest.raises(ApiClientError) as e:
        mc.lists.update_list_member(list_id, h("stranger@example.com"), {"merge_fields": {"FNAME": "X"}})
    assert e.value.status_code == 404


def test_new_member_needs_email_and_status(mc, list_id):
    # Required only for a new address: there they are.
    with pytest.raises(ApiClientError) as e:
        mc.lists.set_list_member(list_id, h("nobody@example.com"), {"merge_fields": {"FNAME": "X"}})
    assert e.value.status_code == 400 and problem(e.value)["errors"][0]["field"] == "email_address"
    with pytest.raises(ApiClientError) as e:
        mc.lists.set_list_member(list_id, h("nobody@example.com"), {"email_address": "nobody@example.com"})
    assert e.value.status_code == 400 and problem(e.value)["errors"][0]["field"] == "status_if_new"


def test_list_lists_and_members(mc, list_id, conforms):
    email = "listed@example.com"
    mc.lists.set_list_member(list_id, h(email), {"email_address": email, "status_if_new": "subscribed"})
    lists = conforms("GET", "/lists", mc.lists.get_all_lists())
    assert list_id in [l["id"] for l in lists["lists"]]
    members = conforms("GET", "/lists/{list_id}/members", mc.lists.get_list_members_info(list_id, count=1000))
    assert email in [m["email_address"] for m in members["members"]]
    assert members["total_items"] >= 1


def test_member_list_filters_and_paging(mc, list_id):
    for email in ("page1@example.com", "page2@example.com", "page3@example.com"):
        mc.lists.set_list_member(list_id, h(email), {"email_address": email, "status_if_new": "subscribed"})
    mc.lists.set_list_member(list_id, h("tx@example.com"), {"email_address": "tx@example.com",
                                                         "status_if_new": "transactional"})
    everyone = mc.lists.get_list_members_info(list_id, count=1000)
    first = mc.lists.get_list_members_info(list_id, count=2, offset=0)
    second = mc.lists.get_list_members_info(list_id, count=2, offset=2)
    assert first["total_items"] == everyone["total_items"] >= 4
    assert len(first["members"]) == 2
    assert [m["id"] for m in first["members"] + second["members"]] == [m["id"] for m in everyone["members"][:4]]
    transactional = mc.lists.get_list_members_info(list_id, status="transactional", count=1000)
    assert [m["email_address"] for m in transactional["members"]] == ["tx@example.com"]
    # A filter the sandbox does not apply is refused, not ignored.
    with pytest.raises(ApiClientError) as e:
        mc.lists.get_list_members_info(list_id, interest_category_id="abc")
    assert e.value.status_code == 501


def test_root(mc, conforms):
    root = conforms("GET", "/", mc.root.get_root())
    assert root["account_name"] and "total_subscribers" in root


def test_store_lists(mc, store, conforms):
    stores = conforms("GET", "/ecommerce/stores", mc.ecommerce.stores())
    assert STORE in [s["id"] for s in stores["stores"]]
    conforms("GET", "/ecommerce/stores/{store_id}/customers", mc.ecommerce.get_all_store_customers(STORE))
    conforms("GET", "/ecommerce/stores/{store_id}/products", mc.ecommerce.get_all_store_products(STORE))
    conforms("GET", "/ecommerce/stores/{store_id}/orders", mc.ecommerce.get_store_orders(STORE))


def test_merge_fields(mc, list_id, conforms):
    fields = conforms("GET", "/lists/{list_id}/merge-fields", mc.lists.get_list_merge_fields(list_id, count=100))
    assert "FNAME" in [f["tag"] for f in fields["merge_fields"]]
    made = mc.lists.add_list_merge_field(list_id, {"name": "Plan", "tag": "PLAN", "type": "text"})
    conforms("POST", "/lists/{list_id}/merge-fields", made)
    assert made["tag"] == "PLAN"
    one = conforms("GET", "/lists/{list_id}/merge-fields/{merge_id}",
                   mc.lists.get_list_merge_field(list_id, made["merge_id"]))
    assert one["tag"] == "PLAN"


def test_errors_raise_api_client_error(mc, list_id, sandbox, conforms_error):
    member = "/lists/{list_id}/members/{subscriber_hash}"
    with pytest.raises(ApiClientError) as e:
        mc.lists.get_list_member(list_id, h("missing@example.com"))
    assert e.value.status_code == 404
    assert conforms_error("GET", member, e.value)["title"] == "Resource Not Found"
    with pytest.raises(ApiClientError) as e:
        mc.lists.set_list_member(list_id, h("bad@example.com"), {"email_address": "bad@example.com",
                                                               "status_if_new": "bogus"})
    assert e.value.status_code == 400
    assert conforms_error("PUT", member, e.value)["title"] == "Invalid Resource"
    stranger = mailchimp_marketing.Client()
    stranger.set_config({"api_key": "0" * 32 + "-" + sandbox["server"], "server": sandbox["server"]})
    stranger.api_client.host = sandbox["base_url"]
    with pytest.raises(ApiClientError) as e:
        stranger.ping.get()
    assert e.value.status_code == 401


def test_injected_faults_raise(mc, list_id, control):
    control.post("faults", {"status": 429, "times": 1, "path_contains": "/merge-fields"})
    with pytest.raises(ApiClientError) as e:
        mc.lists.get_list_merge_fields(list_id)
    assert e.value.status_code == 429 and problem(e.value)["status"] == 429
    control.post("faults", {"status": 503, "times": 1, "path_contains": "/merge-fields"})
    with pytest.raises(ApiClientError) as e:
        mc.lists.get_list_merge_fields(list_id)
    assert e.value.status_code == 503
    assert mc.lists.get_list_merge_fields(list_id)["merge_fields"]


STORE = "sdk-store"


@pytest.fixture(scope="module")
def store(mc, list_id, conforms):
    made = mc.ecommerce.add_store({"id": STORE, "list_id": list_id, "name": "SDK Store",
                                   "currency_code": "USD", "is_syncing": True})
    conforms("POST", "/ecommerce/stores", made)
    return made


def test_store(mc, store, conforms):
    got = conforms("GET", "/ecommerce/stores/{store_id}", mc.ecommerce.get_store(STORE))
    assert got["is_syncing"] is True
    patched = mc.ecommerce.update_store(STORE, {"is_syncing": False})
    conforms("PATCH", "/ecommerce/stores/{store_id}", patched)
    assert patched["is_syncing"] is False


def test_store_fields(mc, store):
    got = mc.ecommerce.get_store(STORE)
    for field in ("created_at", "updated_at", "list_is_active", "platform", "domain", "money_format"):
        assert field in got, field


def test_customer_product_order(mc, store, conforms):
    customer = {"id": "c1", "email_address": "buyer@example.com", "opt_in_status": False,
                "first_name": "Buy", "last_name": "Er"}
    put = mc.ecommerce.set_store_customer(STORE, "c1", customer)
    conforms("PUT", "/ecommerce/stores/{store_id}/customers/{customer_id}", put)
    conforms("GET", "/ecommerce/stores/{store_id}/customers/{customer_id}", mc.ecommerce.get_store_customer(STORE, "c1"))
    product = mc.ecommerce.add_store_product(STORE, {"id": "p1", "title": "Widget",
                                                     "variants": [{"id": "v1", "title": "Widget", "price": 5}]})
    conforms("POST", "/ecommerce/stores/{store_id}/products", product)
    conforms("GET", "/ecommerce/stores/{store_id}/products/{product_id}", mc.ecommerce.get_store_product(STORE, "p1"))
    order = mc.ecommerce.add_store_order(STORE, {
        "id": "o1", "customer": {"id": "c1"}, "currency_code": "USD", "order_total": 10,
        "lines": [{"id": "l1", "product_id": "p1", "product_variant_id": "v1", "quantity": 2, "price": 5},
                  {"id": "l2", "product_id": "p1", "product_variant_id": "v1", "quantity": 1, "price": 5}]})
    conforms("POST", "/ecommerce/stores/{store_id}/orders", order)
    got = conforms("GET", "/ecommerce/stores/{store_id}/orders/{order_id}", mc.ecommerce.get_order(STORE, "o1"))
    assert [l["id"] for l in got["lines"]] == ["l1", "l2"]
    patched = mc.ecommerce.update_order(STORE, "o1", {"financial_status": "paid"})
    conforms("PATCH", "/ecommerce/stores/{store_id}/orders/{order_id}", patched)
    lines = conforms("GET", "/ecommerce/stores/{store_id}/orders/{order_id}/lines",
                     mc.ecommerce.get_all_order_line_items(STORE, "o1"))
    assert [l["id"] for l in lines["lines"]] == ["l1", "l2"] and lines["total_items"] == 2
    conforms("GET", "/ecommerce/stores/{store_id}/orders/{order_id}/lines/{line_id}",
             mc.ecommerce.get_order_line_item(STORE, "o1", "l2"))
    variants = conforms("GET", "/ecommerce/stores/{store_id}/products/{product_id}/variants",
                        mc.ecommerce.get_product_variants(STORE, "p1"))
    assert [v["id"] for v in variants["variants"]] == ["v1"]
    conforms("GET", "/ecommerce/stores/{store_id}/products/{product_id}/variants/{variant_id}",
             mc.ecommerce.get_product_variant(STORE, "p1", "v1"))
    mc.ecommerce.delete_order_line_item(STORE, "o1", "l2")
    assert [l["id"] for l in mc.ecommerce.get_order(STORE, "o1")["lines"]] == ["l1"]
    with pytest.raises(ApiClientError) as e:
        mc.ecommerce.get_order(STORE, "missing")
    assert e.value.status_code == 404


def test_customer_add_patch_delete(mc, store, conforms, conforms_error):
    customers = "/ecommerce/stores/{store_id}/customers"
    made = conforms("POST", customers, mc.ecommerce.add_store_customer(STORE, {
        "id": "c9", "email_address": "c9@example.com", "opt_in_status": False}))
    assert made["id"] == "c9" and made["orders_count"] == 0
    with pytest.raises(ApiClientError) as e:
        mc.ecommerce.add_store_customer(STORE, {"id": "c9", "email_address": "c9@example.com",
                                                "opt_in_status": False})
    assert conforms_error("POST", customers, e.value)["status"] == 400
    patched = conforms("PATCH", customers + "/{customer_id}",
                       mc.ecommerce.update_store_customer(STORE, "c9", {"first_name": "Nine"}))
    assert patched["first_name"] == "Nine" and patched["email_address"] == "c9@example.com"
    mc.ecommerce.delete_store_customer(STORE, "c9")
    with pytest.raises(ApiClientError) as e:
        mc.ecommerce.get_store_customer(STORE, "c9")
    assert e.value.status_code == 404


def test_customer_and_order_fields(mc, store):
    mc.ecommerce.set_store_customer(STORE, "c2", {"id": "c2", "email_address": "c2@example.com",
                                                  "opt_in_status": False})
    customer = mc.ecommerce.get_store_customer(STORE, "c2")
    for field in ("created_at", "updated_at", "orders_count", "total_spent"):
        assert field in customer, field
    mc.ecommerce.add_store_product(STORE, {"id": "p2", "title": "Thing",
                                           "variants": [{"id": "v2", "title": "Thing", "price": 3}]})
    mc.ecommerce.add_store_order(STORE, {
        "id": "o2", "customer": {"id": "c2"}, "currency_code": "USD", "order_total": 3,
        "lines": [{"id": "l1", "product_id": "p2", "product_variant_id": "v2", "quantity": 1, "price": 3}]})
    order = mc.ecommerce.get_order(STORE, "o2")
    for field in ("processed_at_foreign", "updated_at_foreign", "order_total", "tax_total",
                  "shipping_total", "discount_total"):
        assert field in order, field
    assert order["customer"]["email_address"] == "c2@example.com"
    customer = mc.ecommerce.get_store_customer(STORE, "c2")
    assert customer["orders_count"] == 1 and customer["total_spent"] == 3
    mine = mc.ecommerce.get_store_orders(STORE, customer_id="c2")
    assert [o["id"] for o in mine["orders"]] == ["o2"]


class Ok(BaseHTTPRequestHandler):
    """A receiver that answers 200 to Mailchimp's validation GET and to deliveries."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_list_webhooks(mc, list_id, receiver, conforms):
    made = mc.lists.create_list_webhook(list_id, {
        "url": receiver, "events": {"subscribe": True, "unsubscribe": True, "profile": True},
        "sources": {"user": True, "admin": True, "api": False}})
    conforms("POST", "/lists/{list_id}/webhooks", made)
    listed = conforms("GET", "/lists/{list_id}/webhooks", mc.lists.get_list_webhooks(list_id))
    assert made["id"] in [w["id"] for w in listed["webhooks"]]
    conforms("GET", "/lists/{list_id}/webhooks/{webhook_id}", mc.lists.get_list_webhook(list_id, made["id"]))
    mc.lists.delete_list_webhook(list_id, made["id"])
    with pytest.raises(ApiClientError) as e:
        mc.lists.get_list_webhook(list_id, made["id"])
    assert e.value.status_code == 404
