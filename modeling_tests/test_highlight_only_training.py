"""Highlight-only training (moment and IoU loss weights 0, as the TVSum and YouTube Highlights presets) runs the
DETR decoder without autograd: its gradients were zero, and the saliency path must train as it did with the
decoder in the graph (`RDMFForMomentRetrieval.decoder_needs_grad`)."""

import pytest
import torch

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval

TINY = dict(
    video_feature_dim=8, text_feature_dim=6, hidden_size=16, num_attention_heads=2, num_moment_queries=4,
    decoder_ffn_dim=16, dropout=0.1,
)  # fmt: skip
HIGHLIGHT_ONLY = dict(moment_loss_weight=0.0, iou_loss_weight=0.0)
DECODER_PARTS = ("decoder.", "query_embeddings.", "span_head.", "class_head.", "iou_head.")


def inputs_and_labels(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    video = torch.randn(3, 10, 8, generator=generator)
    text = torch.randn(3, 4, 6, generator=generator)
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 7:] = 0
    labels = [
        {"spans": torch.zeros(0, 2), "saliency": torch.rand(10, generator=generator) * mask[i]}
        for i in range(3)
    ]
    return {"video_features": video, "text_features": text, "video_mask": mask, "labels": labels}


def is_decoder(name: str) -> bool:
    return name.startswith(DECODER_PARTS)


def train_steps(model, steps: int) -> dict[str, torch.Tensor]:
    """``steps`` AdamW steps with the training loop's gradient clipping; the saliency path's parameters after."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    torch.manual_seed(0)
    for step in range(steps):
        optimizer.zero_grad()
        model(**inputs_and_labels(step)).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
    return {name: p.detach().clone() for name, p in model.named_parameters() if not is_decoder(name)}


def twin_models():
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(RDMFConfig(**TINY, **HIGHLIGHT_ONLY)).train()
    twin = RDMFForMomentRetrieval(RDMFConfig(**TINY, **HIGHLIGHT_ONLY)).train()
    twin.load_state_dict(model.state_dict())
    return model, twin


def test_a_highlight_only_loss_leaves_the_decoder_out_of_autograd_and_the_saliency_gradients_unchanged(
    monkeypatch,
):
    model, with_decoder = twin_models()
    monkeypatch.setattr(with_decoder, "decoder_needs_grad", lambda labels: True)  # the path before the change
    torch.manual_seed(1)
    output = model(**inputs_and_labels())
    output.loss.backward()
    torch.manual_seed(1)
    reference = with_decoder(**inputs_and_labels())
    reference.loss.backward()
    # the same dropout draws in two model instances: equal to float rounding
    torch.testing.assert_close(output.saliency_logits, reference.saliency_logits, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(output.loss, reference.loss, rtol=1e-6, atol=1e-7)
    assert reference.decoder_hidden_states.requires_grad and not output.decoder_hidden_states.requires_grad
    grads = dict(model.named_parameters())
    for name, p in with_decoder.named_parameters():
        if is_decoder(name):
            assert grads[name].grad is None or not grads[name].grad.any(), name
            assert p.grad is None or not p.grad.any(), name  # zero before, so nothing is lost
        else:
            # the path with the decoder adds exact zeros in another order: equal to float rounding
            torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-6, atol=1e-9, msg=name)


def test_the_saliency_path_trains_as_with_the_decoder_in_the_graph(monkeypatch):
    model, with_decoder = twin_models()
    monkeypatch.setattr(with_decoder, "decoder_needs_grad", lambda labels: True)
    trained, reference = train_steps(model, 8), train_steps(with_decoder, 8)
    assert trained.keys() == reference.keys() and len(trained) > 10
    for name in trained:  # 8 AdamW steps with clipping: float rounding only
        torch.testing.assert_close(trained[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "weights", [dict(moment_loss_weight=1.0), dict(iou_loss_weight=1.0, moment_loss_weight=0.0)]
)
def test_a_moment_or_iou_loss_still_trains_the_decoder(weights):
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(RDMFConfig(**TINY, **{**HIGHLIGHT_ONLY, **weights})).train()
    batch = inputs_and_labels()
    batch["labels"] = [{**label, "spans": torch.tensor([[0.5, 0.2]])} for label in batch["labels"]]
    model(**batch).loss.backward()
    decoder_grads = [p.grad for name, p in model.named_parameters() if name.startswith("decoder.")]
    assert decoder_grads and all(grad is not None for grad in decoder_grads)
    assert any(grad.any() for grad in decoder_grads)


def test_without_labels_the_decoder_keeps_autograd_for_callers_who_differentiate_it():
    model = RDMFForMomentRetrieval(RDMFConfig(**TINY, **HIGHLIGHT_ONLY)).eval()
    batch = inputs_and_labels()
    del batch["labels"]
    assert model(**batch).pred_spans.requires_grad
    with torch.no_grad():
        assert not model(**batch).pred_spans.requires_grad
