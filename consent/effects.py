"""The withdrawal-effects registry: what happens to stored data when a
permission stops being in effect. It is empty until ``create_app`` calls
each package's ``register_effects(effects)``; importing a module never
fills it."""
from collections import defaultdict

from consent import catalogue


class WithdrawalEffects:
    """``effect(user, decisions)`` callables per permission key, run in the
    transaction of the change, with the user's decisions after it."""

    def __init__(self):
        self._effects = defaultdict(list)

    def register(self, key, effect):
        """Run ``effect`` whenever ``key`` stops being in effect or is
        withdrawn. Registering the same effect again changes nothing, so
        building a second app in one process does not run it twice."""
        if key not in catalogue.BY_KEY:
            raise KeyError(key)
        if effect not in self._effects[key]:
            self._effects[key].append(effect)
        return effect

    def unregister(self, key, effect):
        self._effects[key].remove(effect)

    def registered(self, key):
        return tuple(self._effects[key])

    def run(self, user, keys, decisions):
        """Run the effects of every key of ``keys``, in order."""
        for key in keys:
            for effect in self._effects[key]:
                effect(user, decisions)

    def missing(self):
        """The permissions whose data is stored but that have no effect."""
        return [key for key in catalogue.KEYS if catalogue.get(key).stores_data and not self._effects[key]]


effects = WithdrawalEffects()
