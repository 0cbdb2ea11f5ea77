"""The method registry: every attribution method by name, with a lookup that fails loudly."""

from __future__ import annotations

from joulecast.mig.methods import online, ratio
from joulecast.mig.methods.base import Method, UnknownMethodError

METHODS: dict[str, Method] = {
    "slice": ratio.slice_split,
    "kepler": ratio.kepler_split,
    "ceems": ratio.ceems_split,
    "activity": ratio.activity_split,
    "prototype": ratio.prototype_split,
    "offline": ratio.offline_split,
    "online": online.online_fit,
    "online-raw": online.online_raw,
}


def get_method(name: str) -> Method:
    """Look up an attribution method by name.

    Args:
        name: A name from :data:`~joulecast.mig.methods.base.METHOD_NAMES`.

    Returns:
        The method.

    Raises:
        UnknownMethodError: The name is not registered; the one-line message lists the known
            names.
    """
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethodError(name, METHODS) from None
