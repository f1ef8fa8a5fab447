import numpy as np
import pytest

from ratmir.regions import apply_window, parse_window, resolve_window, to_uint8_rgb


def test_parse_and_str_round_trip():
    for spec in ("auto", "percentile:1,99", "ct:40,400", "range:-1000,1000"):
        assert str(parse_window(spec)) == spec


@pytest.mark.parametrize("spec, match", [
    ("hu:40,400", "window mode must be one of"), ("ct:40", "two finite numbers"), ("ct:a,b", "two finite numbers"),
    ("ct:40,0", "width must be > 0"), ("percentile:99,1", "LOW < HIGH"), ("range:5,5", "LOW < HIGH"),
    ("auto:1,2", "takes no values"), ("ct:nan,400", "finite"),
])
def test_parse_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_window(spec)


def test_resolve_modes():
    hu = np.linspace(-1000, 1000, 101, dtype=np.float32)
    assert resolve_window(hu, spec=parse_window("ct:40,400")) == (-160.0, 240.0)
    assert resolve_window(hu, spec=parse_window("range:-5,5")) == (-5.0, 5.0)
    assert resolve_window(hu, spec=parse_window("percentile:0,100")) == (-1000.0, 1000.0)
    assert resolve_window(hu, spec=parse_window("auto")) == pytest.approx((-990.0, 990.0))
    assert resolve_window(np.zeros(3, np.uint8), spec=parse_window("auto")) == (0.0, 255.0)


def test_apply_window_clips_and_handles_constant_and_nan():
    x = apply_window(np.array([-200.0, -160.0, 40.0, 240.0, 3000.0, np.nan]), low=-160, high=240)
    np.testing.assert_allclose(x, [0, 0, 0.5, 1, 1, 0])
    assert x.dtype == np.float32
    assert (apply_window(np.full((2, 2), 7.0), low=7, high=7) == 0).all()


def test_to_uint8_rgb():
    rgb = to_uint8_rgb(np.array([[0.0, 0.5, 1.0]]))
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, :, 0].tolist() == [0, 128, 255] and (rgb[..., 0] == rgb[..., 2]).all()
    assert to_uint8_rgb(np.ones((2, 2, 3))).shape == (2, 2, 3)
    with pytest.raises(ValueError, match=r"\[H, W\] or \[H, W, 3\]"):
        to_uint8_rgb(np.ones((2, 2, 4)))
