import receiver


def test_the_public_api_is_small_and_complete() -> None:
    assert set(receiver.__all__) == {
        "DeliveryContext",
        "Event",
        "KeptResult",
        "Handler",
        "Retry",
        "Settings",
        "TokenMaskingFilter",
        "Transform",
        "__version__",
        "create_app",
    }
    for name in receiver.__all__:
        assert getattr(receiver, name) is not None
    assert receiver.Event.__doc__
    assert receiver.DeliveryContext.__doc__
    assert receiver.Settings.__doc__
    assert receiver.create_app.__doc__
    assert receiver.TokenMaskingFilter.__doc__
