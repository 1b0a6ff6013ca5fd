# A payload of the wrong type, and arguments of the wrong type or number.
from flowstore import NodeOutput, Store


async def f(client: object) -> None:
    store = Store(client)
    wrong = NodeOutput(node_id="n", status="ok", data={}, duration_ms=1.0)
    await store.queues.node_edge("a", "b").push(wrong)  # ERROR "incompatible type \"NodeOutput\"; expected \"NodeMessage\""
    store.caches.attempt_log("run", "2")  # ERROR "incompatible type \"str\"; expected \"int\""
    store.queues.node_edge("a")  # ERROR "Missing positional argument"
    NodeOutput(node_id=1, status="ok", data={}, duration_ms=1.0)  # ERROR "incompatible type \"int\"; expected \"str\""
