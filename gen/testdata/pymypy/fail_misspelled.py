# A misspelled accessor is a type error, as it is a compile error in Go.
from flowstore import Store


def f(client: object) -> None:
    store = Store(client)
    store.queues.node_egde("node_5", "node_8")  # ERROR "has no attribute \"node_egde\""
    store.caches.node_outptu("n")  # ERROR "has no attribute \"node_outptu\""
