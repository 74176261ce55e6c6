"""STAC service profiles: which API, collections, asset keys and URL signing a source uses.

Two public services serve the imagery sitewatch needs, and neither serves all of it well
to an anonymous user:

* **Earth Search** (Element 84, AWS), the default for Sentinel-2: collection 1
  (``sentinel-2-c1-l2a``) with https COGs, and the legacy ``sentinel-2-l2a`` for its
  gaps. Its ``landsat-c2-l2`` assets are in the **requester-pays** bucket
  ``s3://usgs-landsat``: reading them needs AWS credentials and bills the reader.
* **Microsoft Planetary Computer**, the default for Landsat: ``landsat-c2-l2`` and
  ``sentinel-2-l2a`` on Azure Blob Storage, read with a short-lived SAS token that its
  token endpoint hands out to anyone (no account; ``PC_SDK_SUBSCRIPTION_KEY``, when set,
  is sent for better rate limits).

A profile is chosen by name (``--stac-url earth-search`` / ``planetary-computer``) or
from a URL: the two services' hosts are recognised; any other URL is read like Earth
Search, without signing. ``$SITEWATCH_PC_STAC_URL`` and ``$SITEWATCH_PC_TOKEN_URL`` move
the Planetary Computer profile to a mirror (the tests point them at loopback).

Items are *normalised* when they arrive: Planetary Computer's Sentinel-2 asset keys
(``B02``, ``SCL`` ...) become the Earth Search keys the rest of sitewatch reads
(``blue``, ``scl`` ...), and asset hrefs are signed. The search cache keeps the
documents as the service sent them, so a cached search is signed afresh.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sitewatch.errors import InputError, SourceError
from sitewatch.sources._http import public_href

log = logging.getLogger(__name__)

__all__ = [
    "EARTH_SEARCH",
    "PLANETARY_COMPUTER",
    "PROFILES",
    "Profile",
    "aws_credentials",
    "check_s1_access",
    "needs_requester_pays",
    "public_href",
    "resolve_profile",
    "sign_items",
]

PC_SUBSCRIPTION_KEY_ENV = "PC_SDK_SUBSCRIPTION_KEY"
"""Planetary Computer account key (optional for Landsat and Sentinel-2, required for
Sentinel-1 RTC)."""
PC_ACCOUNT_URL = "https://planetarycomputer.microsoft.com/account/request"
"""Where a (free) Planetary Computer account, and so a key, is requested."""


@dataclass(frozen=True)
class Profile:
    """One STAC service as sitewatch uses it.

    Attributes
    ----------
    name : str
        ``"earth-search"``, ``"planetary-computer"``, or ``"custom"`` (any other URL,
        read like Earth Search without signing).
    url : str
        STAC API root.
    collections : mapping of str to str
        Source (``"s2"``, ``"landsat"``) → collection id.
    fallback : mapping of str to str
        Source → collection searched when the first has no usable item in a window
        (Earth Search's legacy ``sentinel-2-l2a`` for collection-1 gaps).
    asset_keys : mapping of str to str
        The service's asset key → the Earth Search key sitewatch reads (empty: same).
    token_url : str or None
        Root of the SAS token endpoint (``{token_url}/{collection}``); None: no signing.
    dn_rule : str
        How Sentinel-2 DN become reflectance when the item declares nothing:
        ``"earth-search"`` (legacy collection: checked against the DN) or ``"esa"``
        (ESA's DN as delivered: −1000 DN from processing baseline 04.00 on).
    """

    name: str
    url: str
    collections: Mapping[str, str]
    fallback: Mapping[str, str] = field(default_factory=dict)
    asset_keys: Mapping[str, str] = field(default_factory=dict)
    token_url: str | None = None
    dn_rule: str = "earth-search"

    @property
    def signs(self) -> bool:
        """True when asset URLs need a SAS token."""
        return self.token_url is not None

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for the manifest (no token)."""
        return {
            "profile": self.name,
            "stac_url": self.url,
            "signing": "Planetary Computer SAS token" if self.signs else None,
            "token_url": self.token_url,
        }


EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
PC_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
PC_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"

EARTH_SEARCH = Profile(
    name="earth-search",
    url=EARTH_SEARCH_URL,
    collections={"s2": "sentinel-2-c1-l2a", "landsat": "landsat-c2-l2"},
    fallback={"s2": "sentinel-2-l2a"},
)
PLANETARY_COMPUTER = Profile(
    name="planetary-computer",
    url=PC_URL,
    collections={"s2": "sentinel-2-l2a", "landsat": "landsat-c2-l2", "s1": "sentinel-1-rtc"},
    asset_keys={
        "B02": "blue",
        "B03": "green",
        "B04": "red",
        "B08": "nir",
        "B11": "swir16",
        "B12": "swir22",
        "SCL": "scl",
    },
    token_url=PC_TOKEN_URL,
    dn_rule="esa",
)
PROFILES = {p.name: p for p in (EARTH_SEARCH, PLANETARY_COMPUTER)}
"""Profiles by name (the values ``--stac-url`` accepts besides a URL)."""

DEFAULT_PROFILE = {
    "s2": "earth-search",
    "landsat": "planetary-computer",
    "s1": "planetary-computer",
}
"""Source → profile used when neither ``--stac-url`` nor ``$SITEWATCH_STAC_URL`` is given."""


def _pc() -> Profile:
    """The Planetary Computer profile, moved by ``$SITEWATCH_PC_STAC_URL``/``_TOKEN_URL``."""
    url = os.environ.get("SITEWATCH_PC_STAC_URL") or PC_URL
    token = os.environ.get("SITEWATCH_PC_TOKEN_URL") or PC_TOKEN_URL
    return replace(PLANETARY_COMPUTER, url=url.rstrip("/"), token_url=token.rstrip("/"))


def resolve_profile(url: str | None = None, *, source: str = "s2") -> Profile:
    """The profile for ``--stac-url`` (a profile name or a URL) and a source.

    Without ``url``: ``$SITEWATCH_STAC_URL`` if set, else Earth Search for Sentinel-2
    and Planetary Computer for Landsat (which an anonymous user can read).

    Raises
    ------
    InputError
        If ``url`` is neither a profile name nor an http(s) URL.

    Examples
    --------
    >>> resolve_profile(source="landsat").name
    'planetary-computer'
    >>> resolve_profile("https://earth-search.aws.element84.com/v1/").name
    'earth-search'
    >>> resolve_profile("http://127.0.0.1:8080").name
    'custom'
    """
    text = (url or os.environ.get("SITEWATCH_STAC_URL") or "").strip()
    if not text:
        text = DEFAULT_PROFILE.get(source, EARTH_SEARCH.name)
    if text == PLANETARY_COMPUTER.name:
        return _pc()
    if text == EARTH_SEARCH.name:
        return EARTH_SEARCH
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(
            f"--stac-url {text!r} is neither a service ({', '.join(PROFILES)}) nor an "
            "http(s) URL of a STAC API; e.g. --stac-url planetary-computer"
        )
    root = text  # as given: messages echo what the user typed
    host = (parts.hostname or "").lower()
    if host == "planetarycomputer.microsoft.com":
        return replace(_pc(), url=root)
    if host == "earth-search.aws.element84.com":
        return replace(EARTH_SEARCH, url=root)
    return replace(EARTH_SEARCH, name="custom", url=root)


def check_s1_access(profile: Profile) -> None:
    """Stop, before any request, when Sentinel-1 RTC cannot be read from ``profile``.

    Sentinel-1 is read as Planetary Computer's ``sentinel-1-rtc`` (γ⁰, terrain-corrected,
    10 m COGs), the one collection there whose token endpoint answers 403 without an
    account key. Earth Search's ``sentinel-1-grd`` is requester-pays and not
    terrain-corrected, so it is refused. Another URL (a mirror) is read as it is.

    Raises
    ------
    InputError
        Earth Search asked for Sentinel-1, or the Planetary Computer without
        ``$PC_SDK_SUBSCRIPTION_KEY``.
    """
    if profile.name == EARTH_SEARCH.name:
        raise InputError(
            "Earth Search's sentinel-1-grd is requester-pays and not terrain-corrected; "
            "sitewatch reads Sentinel-1 RTC from the Planetary Computer: use --stac-url "
            "planetary-computer (the default for --source s1)"
        )
    if profile.name == PLANETARY_COMPUTER.name and not os.environ.get(PC_SUBSCRIPTION_KEY_ENV):
        raise InputError(
            f"Sentinel-1 RTC on the Planetary Computer needs an account key: set "
            f"{PC_SUBSCRIPTION_KEY_ENV} (request a free account at {PC_ACCOUNT_URL})"
        )


# ---------------------------------------------------------------------------
# Normalising and signing items
# ---------------------------------------------------------------------------


def normalise_item(doc: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """An item document with the service's asset keys renamed to Earth Search's.

    Keys already used by the item are left alone. The profile's name and DN rule are
    recorded in the item's properties (``sitewatch:profile``, ``sitewatch:dn_rule``) so
    the DN → reflectance rule follows the service (see
    :func:`sitewatch.sources.stac.reflectance_rule`).
    """
    assets = dict(doc.get("assets") or {})
    for theirs, ours in profile.asset_keys.items():
        if theirs in assets and ours not in assets:
            assets[ours] = assets.pop(theirs)
    props = {
        **(doc.get("properties") or {}),
        "sitewatch:profile": profile.name,
        "sitewatch:dn_rule": profile.dn_rule,
    }
    return {**doc, "assets": assets, "properties": props}


@dataclass(frozen=True)
class _Token:
    token: str
    expiry: dt.datetime


_TOKENS: dict[str, _Token] = {}
_TOKENS_LOCK = threading.Lock()
TOKEN_MARGIN_S = 300.0
"""A token is fetched again when it expires within this many seconds."""


def _fetch_token(url: str, stats: Any = None) -> _Token:
    """GET a SAS token (``{"token": ..., "msft:expiry": ...}``) with time limits and retries."""
    from sitewatch.sources._http import retry, urlopen

    headers = {"Accept": "application/json"}
    key = os.environ.get(PC_SUBSCRIPTION_KEY_ENV)
    if key:
        headers["Ocp-Apim-Subscription-Key"] = key

    def get() -> dict[str, Any]:
        try:
            with urlopen(urllib.request.Request(url, headers=headers)) as resp:
                body = resp.read()
                if stats is not None:
                    stats.add(url, len(body))
                return json.loads(body.decode("utf-8"))  # type: ignore[no-any-return]
        except urllib.error.HTTPError as err:
            err.close()
            if err.code >= 500:
                raise OSError(f"HTTP {err.code} from the token endpoint") from err
            hint = (
                f"set {PC_SUBSCRIPTION_KEY_ENV} to your Planetary Computer account key"
                if err.code in (401, 403)
                else "check --stac-url and $SITEWATCH_PC_TOKEN_URL"
            )
            raise SourceError(
                f"the Planetary Computer token endpoint {url} refused a token "
                f"(HTTP {err.code}); {hint}"
            ) from None

    body = retry(
        f"the Planetary Computer token endpoint {url}",
        get,
        hint="check the network and try again",
        option="--stac-url",
    )
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise SourceError(f"the token endpoint {url} answered without a token")
    expiry_text = str(body.get("msft:expiry") or "")
    try:
        expiry = dt.datetime.fromisoformat(expiry_text.replace("Z", "+00:00"))
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=dt.UTC)
    except ValueError:
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    return _Token(token=token.lstrip("?"), expiry=expiry)


def token_for(profile: Profile, collection: str, *, stats: Any = None) -> str:
    """A valid SAS token for a collection (fetched once, again when near expiry)."""
    if profile.token_url is None:
        raise InputError(f"the {profile.name} profile does not sign URLs")
    url = f"{profile.token_url}/{urllib.parse.quote(collection)}"
    now = dt.datetime.now(dt.UTC)
    with _TOKENS_LOCK:
        held = _TOKENS.get(url)
    if held is not None and (held.expiry - now).total_seconds() > TOKEN_MARGIN_S:
        return held.token
    fresh = _fetch_token(url, stats)
    with _TOKENS_LOCK:
        _TOKENS[url] = fresh
    log.debug("SAS token for %s valid until %s", collection, fresh.expiry.isoformat())
    return fresh.token


def sign_href(href: str, token: str) -> str:
    """``href`` with a SAS token appended (an href already signed is kept).

    Examples
    --------
    >>> sign_href("https://a/x.tif", "se=2&sig=abc")
    'https://a/x.tif?se=2&sig=abc'
    """
    if not href.startswith(("http://", "https://")) or "sig=" in href.partition("?")[2]:
        return href
    return f"{href}{'&' if '?' in href else '?'}{token}"


def sign_items(
    docs: list[dict[str, Any]], profile: Profile, *, stats: Any = None
) -> list[dict[str, Any]]:
    """Item documents with every asset href signed (a no-op for unsigned profiles).

    One token per collection, from ``{token_url}/{collection}``; hrefs that are not
    http(s) (``s3://``) or already carry a signature are left as they are.

    Raises
    ------
    SourceError
        If the token endpoint cannot be read or refuses a token.
    """
    if not profile.signs or not docs:
        return docs
    out = []
    for doc in docs:
        token = token_for(profile, str(doc.get("collection") or ""), stats=stats)
        assets = {
            k: {**a, "href": sign_href(str(a.get("href", "")), token)}
            for k, a in (doc.get("assets") or {}).items()
        }
        out.append({**doc, "assets": assets})
    return out


# ---------------------------------------------------------------------------
# Requester-pays S3
# ---------------------------------------------------------------------------


def needs_requester_pays(asset: Any) -> bool:
    """True for an asset in a requester-pays S3 bucket (``storage:requester_pays``).

    Earth Search's ``landsat-c2-l2`` hrefs are ``s3://usgs-landsat/...`` with
    ``"storage:requester_pays": true`` and no https alternate.
    """
    href = str(getattr(asset, "href", "") or "")
    fields = getattr(asset, "extra_fields", {}) or {}
    return href.startswith("s3://") and (
        bool(fields.get("storage:requester_pays")) or href.startswith("s3://usgs-landsat/")
    )


def aws_credentials() -> str | None:
    """Where AWS credentials are configured (environment, profile or files), or None."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return "AWS_ACCESS_KEY_ID"
    if os.environ.get("AWS_PROFILE"):
        return f"AWS_PROFILE={os.environ['AWS_PROFILE']}"
    home = os.path.expanduser("~")
    for var, default in (
        ("AWS_SHARED_CREDENTIALS_FILE", os.path.join(home, ".aws", "credentials")),
        ("AWS_CONFIG_FILE", os.path.join(home, ".aws", "config")),
    ):
        path = os.environ.get(var) or default
        if os.path.isfile(path):
            return path
    return None


def requester_pays_error(collection: str, *, flag_given: bool) -> InputError:
    """The one-line error for requester-pays assets read without the means to pay."""
    ways = (
        "read Landsat anonymously from Planetary Computer (drop --stac-url, or "
        "--stac-url planetary-computer)"
    )
    if flag_given:
        return InputError(
            f"--requester-pays needs AWS credentials (AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials) and none are "
            f"configured; configure them, or {ways}"
        )
    return InputError(
        f"{collection} assets on this service are in a requester-pays S3 bucket (reads are "
        f"billed to your AWS account): {ways}, or pass --requester-pays with AWS "
        "credentials configured"
    )
