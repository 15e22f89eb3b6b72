"""freshbooks-sdk (FreshBooks' official Python SDK) against the FreshBooks sandbox, through the
calls the product makes: token refresh, identity, clients/invoices/payments get and list (with
the `updated` day filter and lines), callbacks register/list/get/verify/resend/delete, and the
errors each of them can raise (docs/vendors/freshbooks.md §0.9, §1.1, §3.1)."""

import time
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs

import pytest
import requests
from conftest import Control, test_the_loopback_guard_holds  # noqa: F401 (collected here)
from freshbooks import Client, FilterBuilder, IncludesBuilder, PaginateBuilder
from freshbooks.errors import FreshBooksError
from freshbooks.models import Identity, ListResult, Result, VisState


@pytest.fixture(scope="module")
def fb_env(sandbox, monkeypatch_module):
    # The SDK reads its API and auth bases from these variables when the client is built.
    monkeypatch_module.setenv("FRESHBOOKS_API_URL", sandbox["base_url"])
    monkeypatch_module.setenv("FRESHBOOKS_AUTH_URL", sandbox["base_url"])
    return sandbox


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def control(sandbox):
    return Control(sandbox["base_url"])


@pytest.fixture(scope="module")
def fb(fb_env):
    c = fb_env["credentials"]
    client = Client(
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        redirect_uri=c["redirect_uri"],
        access_token=c["access_token"],
        refresh_token=c["refresh_token"],
        # The SDK retries some statuses; a conformance failure must show at once.
        auto_retry=False,
    )
    # The product refreshes before expiry: the token answer must parse into the SDK's fields.
    token = client.refresh_access_token()
    assert token.access_token and token.refresh_token
    assert token.access_token_expires_at > datetime.now(timezone.utc)
    return client


@pytest.fixture(scope="module")
def account(fb_env):
    return fb_env["account_id"]


@pytest.fixture(scope="module")
def books(control, account):
    """A client with a sent invoice and a payment on it."""
    client_id = control.post(
        f"accounts/{account}/clients",
        {"email": "gordon@example.com", "fname": "Gordon", "lname": "Shumway", "organization": "Cyanamid"},
    )["id"]
    invoice_id = control.post(
        f"accounts/{account}/invoices",
        {"customerid": client_id, "sent": True,
         "lines": [{"name": "Work", "qty": "2", "unit_cost": "150.00"}]},
    )["id"]
    payment_id = control.post(
        f"accounts/{account}/payments", {"invoiceid": invoice_id, "amount": "100.00"}
    )["id"]
    return {"client": int(client_id), "invoice": int(invoice_id), "payment": int(payment_id)}


def near_now(t):
    """`t` (aware) is the sandbox's now, read the way the SDK reads the field."""
    assert t.tzinfo is not None
    return abs(t - datetime.now(timezone.utc)) < timedelta(minutes=5)


def handshake_verifier(control, callback_id):
    """The verifier of the callback's handshake POST (made after a short delay; the receiver
    here does not listen, so the control API's delivery record is where it shows)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for d in control.get("deliveries"):
            if d["kind"] == "handshake" and d["callback_id"] == str(callback_id):
                return parse_qs(d["body"])["verifier"][0]
        time.sleep(0.1)
    pytest.fail(f"no handshake for callback {callback_id}")


def test_authorization_code_exchange(fb_env, control):
    # A user of its own: a new token pair supersedes the user's older ones (docs/vendors/freshbooks.md §2).
    other = control.post("setup", {"email": "second@example.com", "business_name": "Second Books"})
    c = fb_env["credentials"]
    code = control.post("codes", {"identity_id": other["identity_id"]})["code"]
    client = Client(client_id=c["client_id"], client_secret=c["client_secret"],
                    redirect_uri=c["redirect_uri"], auto_retry=False)
    token = client.get_access_token(code)
    assert token.access_token and token.refresh_token
    assert client.current_user().identity_id == other["identity_id"]
    with pytest.raises(FreshBooksError) as e:
        client.get_access_token(code)  # single use
    assert e.value.status_code == 400


def test_identity_parses(fb, fb_env):
    me = fb.current_user()
    assert isinstance(me, Identity)
    assert me.identity_id == fb_env["identity_id"]
    assert me.full_name.strip()
    # The SDK wraps nested objects in Result: attribute access all the way down.
    accounts = [m.business.account_id for m in me.business_memberships]
    assert fb_env["account_id"] in accounts
    assert me.business_memberships[0].business.id == fb_env["business_id"]
    # The top-level fields of the SDK's fixture (tests/fixtures/auth_me_response.json).
    for field in ("id", "profile", "identity_uuid", "first_name", "last_name", "email", "language",
                  "confirmed_at", "created_at", "unconfirmed_email", "setup_complete", "phone_numbers",
                  "addresses", "profession", "links", "permissions", "groups", "subscription_statuses",
                  "integrations", "business_memberships", "identity_origin", "roles"):
        assert field in me.data, field
    assert fb_env["account_id"] in me.data["permissions"]
    assert me.business_memberships[0].business.address.country


def test_client_get_and_times(fb, account, books):
    client = fb.clients.get(account, books["client"])
    assert isinstance(client, Result)
    assert client.id == books["client"] and client.userid == books["client"]
    assert client.email == "gordon@example.com"
    assert client.vis_state == VisState.ACTIVE
    # `updated` is US/Eastern, zone-less; the SDK converts it to UTC.
    assert near_now(client.updated)
    # The SDK reads `signup_date` as UTC (docs/vendors/freshbooks.md §0.6 names the Eastern fields): a new
    # client's signup and update are the same instant once each is read in its zone.
    assert client.signup_date == client.updated


def test_client_fields_of_the_sdk_fixture(fb, account, books):
    client = fb.clients.get(account, books["client"])
    # Every field of the SDK's own fixture (tests/fixtures/get_client_response.json) but its
    # made-up `test_amount`.
    fixture_fields = {
        "accounting_systemid", "allow_email_include_pdf", "allow_late_fees", "allow_late_notifications",
        "bus_phone", "company_industry", "company_size", "currency_code", "direct_link_token", "email",
        "fax", "fname", "grand_total_balance", "has_retainer", "home_phone", "id", "language",
        "last_activity", "last_login", "level", "lname", "mob_phone", "note", "notified", "num_logins",
        "organization", "outstanding_balance", "p_city", "p_code", "p_country", "p_province", "p_street",
        "p_street2", "pref_email", "pref_gmail", "retainer_id", "role", "s_city", "s_code", "s_country",
        "s_province", "s_street", "s_street2", "signup_date", "statement_token", "subdomain", "updated",
        "userid", "username", "uuid", "vat_name", "vat_number", "vis_state",
    }
    assert fixture_fields <= set(client.data), fixture_fields - set(client.data)
    written = fb.clients.create(account, {"email": "addr@example.com", "bus_phone": "416-555-0100",
                                          "p_street": "123 Huron St", "p_city": "Toronto",
                                          "p_country": "Canada", "note": "I like cats"})
    again = fb.clients.get(account, written.id)
    assert (again.bus_phone, again.p_street, again.p_city, again.p_country, again.note) == (
        "416-555-0100", "123 Huron St", "Toronto", "Canada", "I like cats")
    assert again.mob_phone == "" and again.language == "en"


def test_client_list_with_updated_filter(fb, account, books):
    today = date.today()
    clients = fb.clients.list(account, builders=[
        PaginateBuilder(1, 100),
        FilterBuilder().between("updated", today - timedelta(days=2), today + timedelta(days=2)),
    ])
    assert isinstance(clients, ListResult)
    assert books["client"] in [c.id for c in clients]
    assert clients.pages.page == 1 and clients.pages.per_page == 100


def test_invoice_with_lines(fb, account, books):
    invoice = fb.invoices.get(account, books["invoice"], includes=IncludesBuilder().include("lines"))
    assert invoice.customerid == books["client"]
    assert str(invoice.amount.amount) == "300.00" and invoice.amount.code == "USD"
    assert str(invoice.outstanding.amount) == "200.00"
    assert invoice.lines[0].name == "Work"
    assert near_now(invoice.updated)
    listed = fb.invoices.list(account, builders=[FilterBuilder().equals("customerid", books["client"])])
    assert [i.id for i in listed] == [books["invoice"]]


def test_payment_get_and_list(fb, account, books):
    payment = fb.payments.get(account, books["payment"])
    assert payment.invoiceid == books["invoice"] and payment.clientid == books["client"]
    assert str(payment.amount.amount) == "100.00"
    listed = fb.payments.list(account, builders=[FilterBuilder().equals("invoiceid", books["invoice"])])
    assert [p.id for p in listed] == [books["payment"]]


def test_not_found_raises_404(fb, account):
    with pytest.raises(FreshBooksError) as e:
        fb.clients.get(account, 999999999)
    assert e.value.status_code == 404
    assert e.value.error_code == 1012
    assert str(e.value) == "Client not found."


def test_bad_token_raises_401(fb_env, account):
    c = fb_env["credentials"]
    stranger = Client(client_id=c["client_id"], access_token="not-a-token", auto_retry=False)
    with pytest.raises(FreshBooksError) as e:
        stranger.clients.list(account)
    assert e.value.status_code == 401
    with pytest.raises(FreshBooksError) as e:
        stranger.current_user()
    assert e.value.status_code == 401


def test_callbacks_lifecycle(fb, account, control):
    created = fb.callbacks.create(account, {"event": "invoice.create", "uri": "http://127.0.0.1:9/hook"})
    assert created.event == "invoice.create" and created.verified is False
    callback_id = created.callbackid
    assert near_now(created.updated_at)
    listed = fb.callbacks.list(account)
    assert callback_id in [c.callbackid for c in listed]
    got = fb.callbacks.get(account, callback_id)
    assert got.uri == "http://127.0.0.1:9/hook"
    resent = fb.callbacks.resend_verification(account, callback_id)
    assert resent.callbackid == callback_id
    verified = fb.callbacks.verify(account, callback_id, handshake_verifier(control, callback_id))
    assert verified.verified is True
    fb.callbacks.delete(account, callback_id)
    with pytest.raises(FreshBooksError) as e:
        fb.callbacks.get(account, callback_id)
    assert e.value.status_code == 404


def test_callback_validation_raises_422(fb, account):
    with pytest.raises(FreshBooksError) as e:
        fb.callbacks.create(account, {"event": "no.such_event", "uri": "http://127.0.0.1:9/hook"})
    assert e.value.status_code == 422
    assert e.value.error_details


def test_callback_updated_at_is_iso8601_utc(fb, account):
    created = fb.callbacks.create(account, {"event": "client.update", "uri": "http://127.0.0.1:9/x"})
    raw = requests.get(
        f"{fb.base_url}/events/account/{account}/events/callbacks/{created.callbackid}",
        headers={"Authorization": f"Bearer {fb.access_token}"}, timeout=30,
    ).json()
    updated_at = raw["response"]["result"]["callback"]["updated_at"]
    assert updated_at.endswith("Z") and "T" in updated_at, updated_at
    fb.callbacks.delete(account, created.callbackid)


def test_client_create_and_update(fb, account):
    created = fb.clients.create(account, {"email": "new@example.com", "fname": "New", "organization": "Org"})
    assert created.email == "new@example.com" and created.id
    updated = fb.clients.update(account, created.id, {"lname": "Person"})
    assert updated.lname == "Person" and updated.fname == "New"
    with pytest.raises(FreshBooksError) as e:
        fb.clients.create(account, {"email": "not an email"})
    assert e.value.status_code == 422
    with pytest.raises(FreshBooksError) as e:
        fb.clients.update(account, 999999999, {"lname": "X"})
    assert e.value.status_code == 404 and e.value.error_code == 1012


def test_google_rpc_error_shape_raises(fb, account, control):
    """The newer google-rpc shape (docs/vendors/freshbooks.md §1.1, §3.1) keeps the statuses, so the SDK
    still raises FreshBooksError with them."""
    control.post("error_shape", {"shape": "google_rpc"})
    try:
        with pytest.raises(FreshBooksError) as e:
            fb.clients.get(account, 999999999)
        assert e.value.status_code == 404
        assert e.value.raw_response["code"] == 5
        assert e.value.raw_response["details"][0]["reason"] == "1012"
        with pytest.raises(FreshBooksError) as e:
            fb.callbacks.create(account, {"event": "no.such_event", "uri": "http://127.0.0.1:9/hook"})
        assert e.value.status_code == 422
        assert e.value.error_details[0]["fieldViolations"][0]["field"] == "event"
    finally:
        control.post("error_shape", {"shape": "legacy"})


def test_client_archive_and_restore(fb, account):
    made = fb.clients.create(account, {"email": "archive@example.com"})
    # vis_state in a PUT discards every other field (docs/vendors/freshbooks.md §0.10).
    archived = fb.clients.update(account, made.id, {"vis_state": VisState.ARCHIVED, "fname": "Ignored"})
    assert archived.vis_state == VisState.ARCHIVED and archived.fname == ""
    deleted = fb.clients.delete(account, made.id)
    assert deleted.vis_state == VisState.DELETED
    restored = fb.clients.update(account, made.id, {"vis_state": VisState.ACTIVE})
    assert restored.vis_state == VisState.ACTIVE


def test_injected_faults_raise(fb, account, books, control):
    control.post("faults", {"route": "clients", "times": 1,
                            "action": {"kind": "status", "status": 429, "retry_after_secs": 2}})
    with pytest.raises(FreshBooksError) as e:
        fb.clients.get(account, books["client"])
    assert e.value.status_code == 429
    control.post("faults", {"route": "invoices", "times": 1, "action": {"kind": "status", "status": 503}})
    with pytest.raises(FreshBooksError) as e:
        fb.invoices.get(account, books["invoice"])
    assert e.value.status_code == 503
    # Spent: the next call is served.
    assert fb.clients.get(account, books["client"]).id == books["client"]


def test_errors_with_200_quirk(fb, account, control):
    """The injectable quirk: an error body with HTTP 200 (weakly sourced, docs/vendors/freshbooks.md §0.9).
    The SDK treats a 200 as success, so the error only shows in the body."""
    control.post("errors_with_200", {"enabled": True})
    try:
        r = requests.get(
            f"{fb.base_url}/accounting/account/{account}/users/clients/999999999",
            headers={"Authorization": f"Bearer {fb.access_token}"}, timeout=30,
        )
        assert r.status_code == 200
        assert r.json()["response"]["errors"][0]["errno"] == 1012
    finally:
        control.post("errors_with_200", {"enabled": False})
