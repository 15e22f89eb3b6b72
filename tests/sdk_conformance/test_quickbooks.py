"""python-quickbooks + intuit-oauth (the most used QuickBooks Online SDK and Intuit's own OAuth
client) against the QuickBooks sandbox, through the calls the product makes: OAuth discovery,
refresh and revoke; customer get, query by email and by MetaData.LastUpdatedTime, CDC, sparse
update, note attachable, CompanyInfo; and the Faults each raises (docs/vendors/quickbooks.md §2, §3)."""

import os
from datetime import datetime, timedelta, timezone

import pytest
from conftest import Control, test_the_loopback_guard_holds  # noqa: F401 (collected here)
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import (AuthorizationException, ObjectNotFoundException, QuickbooksException,
                                   ValidationException)
from quickbooks.objects.attachable import Attachable, AttachableRef
from quickbooks.objects.base import Address, EmailAddress, PhoneNumber, Ref
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer

MINOR_VERSION = 75

# The sandbox speaks plain HTTP on loopback; oauthlib (under python-quickbooks' OAuth2Session)
# refuses http:// unless told this is a local test.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


@pytest.fixture(scope="module")
def control(sandbox):
    return Control(sandbox["base_url"])


def auth_client(sandbox, **tokens):
    c = sandbox["credentials"]
    # intuit-oauth takes a discovery-document URL in place of 'sandbox'/'production'.
    return AuthClient(
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        redirect_uri=c["redirect_uri"],
        environment=f"{sandbox['base_url']}/.well-known/openid_sandbox_configuration/",
        **tokens,
    )


def connect(sandbox, auth, refresh_token):
    qb = QuickBooks(auth_client=auth, refresh_token=refresh_token, company_id=sandbox["realm_id"],
                    minorversion=MINOR_VERSION)
    # Not 'sandbox' by name, so the SDK uses api_url_v3: point it at the sandbox.
    qb.api_url_v3 = f"{sandbox['base_url']}/v3"
    return qb


@pytest.fixture(scope="module")
def qb(sandbox):
    auth = auth_client(sandbox)
    # No access token given: the SDK refreshes first (the token answer must parse).
    qb = connect(sandbox, auth, sandbox["credentials"]["refresh_token"])
    assert auth.access_token and auth.refresh_token and auth.expires_in == 3600
    return qb


@pytest.fixture(scope="module")
def customer_id(control, sandbox):
    return control.post(
        f"companies/{sandbox['realm_id']}/customers",
        {"given_name": "Ada", "family_name": "Lovelace", "display_name": "Ada Lovelace",
         "email": "ada@example.com"},
    )["id"]


def test_discovery_document(sandbox):
    auth = auth_client(sandbox)
    base = sandbox["base_url"]
    assert auth.token_endpoint == f"{base}/oauth2/v1/tokens/bearer"
    assert auth.revoke_endpoint == f"{base}/v2/oauth2/tokens/revoke"
    assert auth.auth_endpoint == f"{base}/connect/oauth2"
    assert auth.user_info_url.startswith(base)
    assert auth.get_authorization_url([Scopes.ACCOUNTING]).startswith(f"{base}/connect/oauth2?")


def test_authorization_code_exchange(sandbox, control):
    code = control.post("codes", {"realm_id": sandbox["realm_id"]})["code"]
    auth = auth_client(sandbox)
    auth.get_bearer_token(code, realm_id=sandbox["realm_id"])
    assert auth.access_token and auth.refresh_token and auth.x_refresh_token_expires_in
    with pytest.raises(AuthClientError) as e:
        auth_client(sandbox).get_bearer_token(code)  # single use
    assert e.value.status_code == 400


def test_userinfo(qb):
    info = qb.auth_client.get_user_info().json()
    assert info["sub"] and info["email"]


def test_customer_get_parses(qb, customer_id):
    c = Customer.get(customer_id, qb=qb)
    assert isinstance(c, Customer)
    assert c.Id == str(customer_id) and c.DisplayName == "Ada Lovelace"
    assert isinstance(c.PrimaryEmailAddr, EmailAddress) and c.PrimaryEmailAddr.Address == "ada@example.com"
    assert c.MetaData["CreateTime"] and c.MetaData["LastUpdatedTime"]
    assert c.SyncToken == "0"


def test_customer_currency_ref(qb, customer_id):
    c = Customer.get(customer_id, qb=qb)
    assert isinstance(c.CurrencyRef, Ref) and c.CurrencyRef.value == "USD"
    assert c.Balance == 0 and c.PrintOnCheckName == "Ada Lovelace"


def test_query_by_email(qb, customer_id):
    found = Customer.where("PrimaryEmailAddr = 'ada@example.com'", qb=qb)
    assert [c.Id for c in found] == [str(customer_id)]
    assert isinstance(found[0], Customer)


def test_count_and_paging(qb, customer_id):
    assert Customer.count("PrimaryEmailAddr = 'ada@example.com'", qb=qb) == 1
    everyone = Customer.all(qb=qb, max_results=1000)
    assert str(customer_id) in [c.Id for c in everyone]
    assert len(Customer.all(qb=qb, start_position=1, max_results=1)) == 1


def test_cdc_with_sdk_datetime(qb, customer_id):
    # The SDK formats a datetime zone-less ("%Y-%m-%dT%H:%M:%S").
    since = datetime.now() - timedelta(days=1)
    cdc = change_data_capture([Customer], since, qb=qb)
    assert str(customer_id) in [c.Id for c in cdc.Customer]


def test_cdc_without_seconds(qb, customer_id):
    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M+00:00")
    cdc = change_data_capture([Customer], since, qb=qb)
    assert str(customer_id) in [c.Id for c in cdc.Customer]


def test_query_last_updated_zoneless(qb, customer_id):
    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    found = Customer.where(f"MetaData.LastUpdatedTime > '{since}'", qb=qb)
    assert str(customer_id) in [c.Id for c in found]


def test_unevaluable_condition_raises(qb):
    # Matching nothing would read as "nothing changed": Intuit refuses the query instead.
    with pytest.raises(ValidationException) as e:
        Customer.where("MetaData.LastUpdatedTime > 'last week'", qb=qb)
    assert e.value.error_code == 4001


def test_query_last_updated_with_zone(qb, customer_id):
    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    found = Customer.where(f"MetaData.LastUpdatedTime > '{since}'", qb=qb)
    assert str(customer_id) in [c.Id for c in found]


def test_sparse_update_and_stale_sync_token(qb, customer_id):
    c = Customer.get(customer_id, qb=qb)
    c.sparse = True
    c.Notes = "Updated by the SDK"
    saved = c.save(qb=qb)
    assert saved.SyncToken == "1" and saved.Notes == "Updated by the SDK"
    stale = Customer.get(customer_id, qb=qb)
    stale.SyncToken = "0"
    stale.sparse = True
    stale.Notes = "stale"
    with pytest.raises(QuickbooksException) as e:
        stale.save(qb=qb)
    assert e.value.error_code == 5010


def test_note_attachable(qb, customer_id):
    note = Attachable()
    note.Note = "A note from the SDK"
    ref = AttachableRef()
    ref.EntityRef = Customer.get(customer_id, qb=qb).to_ref()
    note.AttachableRef.append(ref)
    saved = note.save(qb=qb)
    assert isinstance(saved, Attachable) and saved.Id and saved.Note == "A note from the SDK"


def test_company_info(qb, sandbox):
    info = CompanyInfo.get(sandbox["realm_id"], qb=qb)
    assert isinstance(info, CompanyInfo) and info.CompanyName == "Acme Books"


def test_company_info_address_and_contact(qb, sandbox):
    info = CompanyInfo.get(sandbox["realm_id"], qb=qb)
    assert isinstance(info.CompanyAddr, Address) and info.CompanyAddr.City
    assert isinstance(info.Email, EmailAddress) and info.Email.Address
    assert isinstance(info.PrimaryPhone, PhoneNumber) and info.PrimaryPhone.FreeFormNumber
    assert isinstance(info.LegalAddr, Address) and isinstance(info.CustomerCommunicationAddr, Address)
    assert info.Country and info.LegalName and info.CompanyStartDate and info.FiscalYearStartMonth


def test_not_found_raises(qb):
    with pytest.raises(ObjectNotFoundException) as e:
        Customer.get(999999, qb=qb)
    assert e.value.error_code == 610


def test_injected_faults_raise(qb, customer_id, control):
    # Intuit throttles with an XML body, which python-quickbooks cannot read as JSON.
    control.post("faults", {"route": "customer", "times": 1, "action": {"kind": "status", "status": 429}})
    with pytest.raises(QuickbooksException) as e:
        Customer.get(customer_id, qb=qb)
    assert "ThrottleExceeded" in str(e.value.message)
    control.post("faults", {"route": "query", "times": 1, "action": {"kind": "status", "status": 500}})
    with pytest.raises(QuickbooksException):
        Customer.where("PrimaryEmailAddr = 'ada@example.com'", qb=qb)
    assert Customer.get(customer_id, qb=qb).Id == str(customer_id)


def test_bad_token_raises(sandbox):
    auth = auth_client(sandbox, access_token="not-a-token", refresh_token="not-a-token")
    qb = connect(sandbox, auth, "not-a-token")
    with pytest.raises(AuthorizationException):
        Customer.get(1, qb=qb)
    with pytest.raises(AuthClientError) as e:
        auth.refresh()
    assert e.value.status_code == 400


def test_revoke_disconnects(sandbox, control):
    # A company of its own, so revoking does not disconnect the other tests.
    company = control.post("setup", {"name": "Revoked Books"})["company"]
    realm = company["realm_id"]
    auth = auth_client(sandbox)
    qb = QuickBooks(auth_client=auth, refresh_token=company["tokens"]["refresh_token"], company_id=realm,
                    minorversion=MINOR_VERSION)
    qb.api_url_v3 = f"{sandbox['base_url']}/v3"
    assert CompanyInfo.get(realm, qb=qb).CompanyName == "Revoked Books"
    assert auth.revoke() is True
    with pytest.raises(AuthorizationException):
        CompanyInfo.get(realm, qb=qb)
