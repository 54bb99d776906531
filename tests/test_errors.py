from imagenet_trainer.errors import reason


def test_reason_is_the_first_sentence_of_the_first_line():
    e = RuntimeError("PytorchStreamReader failed reading zip archive: not a ZIP archive. This is an internal miniz "
                     "error. If you are seeing this error, there is a high likelihood that your checkpoint file is "
                     "corrupted\nsecond line")
    assert reason(e) == "PytorchStreamReader failed reading zip archive: not a ZIP archive"
    assert reason(ValueError("x" * 300), limit=50) == "x" * 50
    assert reason(KeyError()) == "KeyError"
    assert reason(OSError("  \n")) == "OSError"
    assert reason(ValueError("version 1.2.3 is too old")) == "version 1.2.3 is too old"  # no sentence break inside
