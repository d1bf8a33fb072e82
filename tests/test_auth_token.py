"""Token mode: a runtime without the admin key reaches the data through mastra/public:storage.

The local deployment decodes JWTs without verifying them (a real deployment verifies them against
its auth providers), so these tests check the entry points' own rules: an identity is required
and must be on the MASTRA_ALLOWED_IDENTITIES allow-list; with no allow-list, nothing is allowed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
import pytest

from convex_mastra import AuthenticationError, ConvexStore, FunctionError, LocalDeployment

ISSUER = "https://issuer.example"


def _jwt(subject: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    claims = {"sub": subject, "iss": ISSUER, "aud": "convex", "exp": 4102444800}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def allow_listed() -> Iterator[LocalDeployment]:
    env = {"MASTRA_ALLOWED_IDENTITIES": f"{ISSUER}|svc-agent, {ISSUER}|svc-worker, svc-bare"}
    with LocalDeployment(env=env) as local:
        yield local


@pytest.mark.parametrize("subject", ["svc-agent", "svc-worker"])
async def test_allow_listed_identity_can_use_storage(
    allow_listed: LocalDeployment, subject: str, uid: str
) -> None:
    async with ConvexStore(allow_listed.url, auth_token=_jwt(subject)) as store:
        assert store._dispatcher.function == "mastra/public:storage"
        assert (await store.handler_info()).name == "convex-mastra"
        await store._dispatcher.call("insert", f"tok_{uid}", record={"id": "a", "by": subject})
        row = await store._dispatcher.call("load", f"tok_{uid}", keys={"id": "a"})
        assert row == {"id": "a", "by": subject}


@pytest.mark.parametrize("subject", ["intruder", "svc-bare"])
async def test_identity_not_on_the_list_is_refused(
    allow_listed: LocalDeployment, subject: str
) -> None:
    # "svc-bare" is listed without its issuer: a bare subject never matches.
    async with ConvexStore(allow_listed.url, auth_token=_jwt(subject)) as store:
        with pytest.raises(AuthenticationError, match="FORBIDDEN"):
            await store.handler_info()


async def test_public_entry_points_need_an_identity(allow_listed: LocalDeployment) -> None:
    from convex_mastra._transport import Transport

    anonymous = Transport(allow_listed.url)
    for function in ("mastra/public:storage", "mastra/public:cache"):
        with pytest.raises(AuthenticationError, match="UNAUTHENTICATED"):
            await anonymous.mutation(function, {"op": "info"})
    await anonymous.aclose()


async def test_no_allow_list_allows_no_one(convex_deployment_local: LocalDeployment) -> None:
    async with ConvexStore(convex_deployment_local.url, auth_token=_jwt("svc-agent")) as store:
        with pytest.raises(AuthenticationError, match="FORBIDDEN"):
            await store.handler_info()


async def test_a_token_is_not_an_admin_key(allow_listed: LocalDeployment) -> None:
    async with ConvexStore(
        allow_listed.url, auth_token=_jwt("svc-agent"), storage_function="mastra/storage:handle"
    ) as store:
        with pytest.raises(FunctionError, match="Could not find public function"):
            await store.handler_info()


@pytest.fixture(scope="module")
def convex_deployment_local() -> Iterator[LocalDeployment]:
    with LocalDeployment() as local:
        yield local


async def test_an_allow_listed_identity_can_watch_and_others_are_refused(
    allow_listed: LocalDeployment, uid: str
) -> None:
    from tests.domains.test_threads import message, thread

    async with ConvexStore(allow_listed.url, auth_token=_jwt("svc-agent")) as store:
        thread_id = (await store.threads.save(thread(uid))).id
        await store.messages.save([message(uid, thread_id, 0)])
        async with store.messages.watch(thread_id) as watch:  # mastra/public:liveMessages
            assert (await anext(watch)).id == f"m0-{uid}"
    async with ConvexStore(allow_listed.url, auth_token=_jwt("intruder")) as store:
        with pytest.raises(AuthenticationError, match="FORBIDDEN"):
            await anext(store.messages.watch(thread_id))


async def test_a_watch_on_the_internal_queries_without_the_admin_key_is_refused_clearly(
    allow_listed: LocalDeployment,
) -> None:
    async with ConvexStore(
        allow_listed.url, auth_token=_jwt("svc-agent"), storage_function="mastra/storage:handle"
    ) as store:
        with pytest.raises(FunctionError, match="deployed and the admin key") as caught:
            await anext(store.messages.watch("t-any"))
        assert "Could not find public function for 'mastra/live:messages'" in str(caught.value)
