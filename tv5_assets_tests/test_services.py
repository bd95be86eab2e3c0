"""The real local services (scripts/services): Neo4j over Bolt with auth, the Milvus standalone
server, and that none of them listens beyond loopback.

These start the services when they are not running (first Neo4j start also builds the launcher)
and leave them running; `scripts/services stop` stops them.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tv5_assets_tests import services as svc


@pytest.fixture(scope="module")
def neo4j_server() -> svc.Neo4jSettings:
    return svc.ensure_neo4j()


@pytest.fixture(scope="module")
def milvus_server() -> svc.MilvusServerSettings:
    return svc.ensure_milvus_server()


@pytest.mark.neo4j
def test_neo4j_bolt_answers_with_auth(neo4j_server: svc.Neo4jSettings) -> None:
    import neo4j

    assert neo4j_server.uri.startswith("bolt://127.0.0.1:")
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        with driver.session() as session:
            assert session.run("RETURN 1 AS ok").single()["ok"] == 1
            comp = session.run("CALL dbms.components() YIELD name, versions, edition "
                               "RETURN name, versions[0] AS version, edition").single()
    assert comp["edition"] == "community"
    assert comp["version"].startswith("5.26.")


@pytest.mark.neo4j
def test_neo4j_rejects_wrong_password(neo4j_server: svc.Neo4jSettings) -> None:
    import neo4j
    from neo4j.exceptions import AuthError

    wrong = neo4j_server.password + "-wrong"
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=(neo4j_server.user, wrong)) as driver:
        with pytest.raises(AuthError):
            driver.verify_connectivity()
    # and no anonymous access either
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=None) as driver:
        with pytest.raises((AuthError, neo4j.exceptions.ClientError)):
            with driver.session() as session:
                session.run("RETURN 1").consume()


@pytest.mark.neo4j
@pytest.mark.skipif(os.environ.get("TV5_FAULT_TESTS") != "1",
                    reason="kills the shared local Neo4j: opt in with TV5_FAULT_TESTS=1")
def test_neo4j_committed_data_survives_a_crash(neo4j_server: svc.Neo4jSettings) -> None:
    """SIGKILL (no checkpoint, no clean shutdown) then restart: committed writes are recovered."""
    import neo4j

    marker = f"crash-{uuid.uuid4().hex}"
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        driver.execute_query("CREATE (:Tv5ServicesProbe {marker: $m})", m=marker)
    old_pid = svc.kill_neo4j()
    assert not svc.neo4j_answers(neo4j_server, timeout=2)
    settings = svc.restart_neo4j()
    assert svc.service_pid("neo4j") not in (None, old_pid)
    with neo4j.GraphDatabase.driver(settings.uri, auth=settings.auth) as driver:
        recs, _, _ = driver.execute_query(
            "MATCH (p:Tv5ServicesProbe {marker: $m}) WITH p, count(*) AS n DELETE p RETURN n", m=marker)
    assert [r["n"] for r in recs] == [1]


@pytest.mark.milvus_server
def test_milvus_server_create_insert_index_search(milvus_server: svc.MilvusServerSettings) -> None:
    from pymilvus import DataType, MilvusClient

    assert milvus_server.uri.startswith("http://127.0.0.1:")
    name = f"tv5_services_probe_{uuid.uuid4().hex[:8]}"
    client = MilvusClient(uri=milvus_server.uri)
    try:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("title", DataType.VARCHAR, max_length=128)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
        index = client.prepare_index_params()
        index.add_index(field_name="vec", index_type="HNSW", metric_type="COSINE",
                        params={"M": 8, "efConstruction": 64})
        client.create_collection(name, schema=schema, index_params=index)
        rows = [{"id": i, "title": f"movie {i}", "vec": [float((i * 7 + j * 3) % 11) + 0.5 for j in range(8)]}
                for i in range(200)]
        assert client.insert(name, rows)["insert_count"] == 200
        client.flush(name)
        client.load_collection(name)
        desc = client.describe_index(name, "vec")
        assert desc["index_type"] == "HNSW"
        hits = client.search(name, data=[rows[42]["vec"]], limit=3, output_fields=["title"],
                             search_params={"metric_type": "COSINE", "params": {"ef": 32}})
        top = hits[0][0]
        assert top["distance"] == pytest.approx(1.0, abs=1e-4)
        assert top["entity"]["title"] == f"movie {top['id']}"
        assert rows[top["id"]]["vec"] == rows[42]["vec"]  # an exact duplicate vector or 42 itself
        got = client.query(name, filter="id in [3, 4]", output_fields=["title"])
        assert sorted(r["title"] for r in got) == ["movie 3", "movie 4"]
    finally:
        if client.has_collection(name):
            client.drop_collection(name)
        client.close()


@pytest.mark.neo4j
@pytest.mark.milvus_server
def test_service_ports_listen_on_loopback_only(neo4j_server: svc.Neo4jSettings,
                                               milvus_server: svc.MilvusServerSettings) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) not installed")
    ours: dict[int, str] = {}
    for name in ("neo4j", "milvus"):
        pid = svc.service_pid(name)
        assert pid is not None, f"{name} is not running under scripts/services"
        for p in svc.process_tree(pid):
            ours[p] = name
    listeners = svc.listening_sockets()
    service_ports = {int(neo4j_server.uri.rsplit(":", 1)[1]), int(milvus_server.uri.rsplit(":", 1)[1])}
    mine = [l for l in listeners
            if l.port in service_ports or any(pid in ours or pname == "milvus" for pname, pid in l.processes)]
    assert {l.port for l in mine} >= service_ports, f"service ports not listening: {listeners}"
    exposed = [l for l in mine if not svc.is_loopback(l.address)]
    assert not exposed, f"listening beyond loopback: {exposed}"
    # Milvus's own components (rootcoord, querynode, etcd, metrics ...) are invisible from here:
    # they live in the launcher's private network namespace; only the forwarder listens.
    assert not [l for l in listeners if any(pname == "milvus" for pname, _ in l.processes)]


def test_is_loopback() -> None:
    assert svc.is_loopback("127.0.0.1")
    assert svc.is_loopback("::1")
    assert svc.is_loopback("::ffff:127.0.0.1")
    for addr in ("*", "0.0.0.0", "::", "192.0.2.2", "fd00::2"):
        assert not svc.is_loopback(addr)
