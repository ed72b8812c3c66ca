"""Push delivery: providers that hand notifications to a push service
(``push.providers``)."""
