"""Hungarian matcher and the RDMF losses (section 3.6).

``L = lambda_1 L_sal + lambda_2 L_mr + lambda_3 L_iou`` (eq. 17), with ``L_mr`` the DETR set loss
(span regression + generalised IoU + foreground/background cross-entropy) after Hungarian matching.
Every normaliser is a count summed over processes, so data-parallel training on shards gives the same
gradients as one process on the whole batch.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from .span_utils import generalized_temporal_iou, span_cxw_to_xx, temporal_iou

FOREGROUND, BACKGROUND = 0, 1


class RDMFHungarianMatcher(nn.Module):
    """One-to-one assignment of predicted spans to ground-truth spans, per video.

    Cost: ``-class_cost * p_fg + span_cost * L1(cxw) - giou_cost * GIoU``, minimised with
    ``scipy.optimize.linear_sum_assignment``.
    """

    def __init__(self, class_cost: float = 4.0, span_cost: float = 10.0, giou_cost: float = 1.0):
        super().__init__()
        self.class_cost, self.span_cost, self.giou_cost = class_cost, span_cost, giou_cost

    def cost_matrices(self, logits: torch.Tensor, pred_spans: torch.Tensor, target_spans: list[torch.Tensor]):
        """Per video, the ``(num_queries, n_i)`` matching cost."""
        probs = logits.softmax(-1)[..., FOREGROUND]  # (batch, queries)
        costs = []
        for prob, spans, targets in zip(probs, pred_spans, target_spans):
            targets = targets.to(spans)
            cost = -self.class_cost * prob.unsqueeze(1)
            cost = cost + self.span_cost * torch.cdist(spans, targets, p=1)
            giou = generalized_temporal_iou(span_cxw_to_xx(spans), span_cxw_to_xx(targets))
            costs.append(cost - self.giou_cost * giou)
        return costs

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, pred_spans: torch.Tensor, target_spans: list[torch.Tensor]):
        """Match predictions to targets.

        Args:
            logits: ``(batch, queries, 2)`` foreground/background logits.
            pred_spans: ``(batch, queries, 2)`` normalised (center, width).
            target_spans: ``batch`` tensors ``(n_i, 2)`` normalised (center, width); ``n_i`` may be 0.

        Returns:
            ``batch`` pairs ``(query_index, target_index)`` of long tensors of length ``min(queries, n_i)``.
        """
        matches = []
        for cost in self.cost_matrices(logits.float(), pred_spans.float(), target_spans):
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
        return matches


def global_mean_count(count: torch.Tensor) -> torch.Tensor:
    """``count`` summed over processes and divided by their number (itself outside distributed runs), >= 1e-6.

    Dividing a local sum by this, then averaging gradients over processes (DDP), equals dividing the
    global sum by the global count.
    """
    count = count.detach().float()
    if dist.is_available() and dist.is_initialized():
        count = count.clone()
        dist.all_reduce(count)
        count = count / dist.get_world_size()
    return count.clamp(min=1e-6)


def saliency_loss(saliency_logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``L_sal``: binary cross-entropy of ``s_i = sigmoid(logit_i)`` against targets in [0, 1], over valid clips.

    Args:
        saliency_logits, targets, mask: ``(batch, clips)``.
    """
    mask = mask.to(saliency_logits.dtype)
    bce = F.binary_cross_entropy_with_logits(
        saliency_logits, targets.to(saliency_logits.dtype), reduction="none"
    )
    return (bce * mask).sum() / global_mean_count(mask.sum())


def saliency_rank_loss(
    saliency_logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    kind: str = "pairwise",
    temperature: float = 0.1,
) -> torch.Tensor:
    """A within-video ranking loss on the saliency logits (**project choice**, beside eq. 14's ``L_sal``).

    The highlight metrics rank clips inside each video, and a per-video shift of the logits changes
    no ranking; both losses below are invariant to it, where the cross-entropy is not.

    - ``"pairwise"`` (RankNet): for every pair of valid clips with ``y_i > y_j``,
      ``(y_i - y_j) * log(1 + exp(-(z_i - z_j)))``, normalised per video by ``sum (y_i - y_j)``.
      Memory grows as ``clips**2`` per video.
    - ``"listwise"`` (ListNet): the cross-entropy between ``softmax(y / temperature)`` and
      ``softmax(z)`` over the video's valid clips; linear in ``clips``.

    Videos whose targets are all equal contribute nothing. The mean over the remaining videos uses a
    count summed over processes (see ``global_mean_count``).

    Args:
        saliency_logits, targets, mask: ``(batch, clips)``.
    """
    valid = mask.bool()
    targets = targets.to(saliency_logits.dtype)
    logits = saliency_logits.masked_fill(~valid, 0.0)
    lowest = targets.masked_fill(~valid, float("inf")).min(dim=1).values
    highest = targets.masked_fill(~valid, float("-inf")).max(dim=1).values
    ranked = highest > lowest  # (batch,) videos with something to rank
    if kind == "pairwise":
        gap = targets.unsqueeze(2) - targets.unsqueeze(1)  # (batch, clips, clips): y_i - y_j
        pair_valid = valid.unsqueeze(2) & valid.unsqueeze(1)
        weight = gap.clamp(min=0) * pair_valid
        margin = logits.unsqueeze(2) - logits.unsqueeze(1)
        per_video = (weight * F.softplus(-margin)).sum((1, 2)) / weight.sum((1, 2)).clamp(min=1e-12)
    else:
        neg_inf = torch.finfo(logits.dtype).min
        target_dist = (targets / temperature).masked_fill(~valid, neg_inf).softmax(dim=1)
        log_pred = logits.masked_fill(~valid, neg_inf).log_softmax(dim=1)
        per_video = -(target_dist * log_pred.masked_fill(~valid, 0.0)).sum(dim=1)
        # subtract the entropy so a perfect match scores 0 (a constant: no change to the gradient)
        per_video = per_video + (target_dist * target_dist.clamp(min=1e-30).log()).sum(dim=1)
    per_video = per_video * ranked
    return per_video.sum() / global_mean_count(ranked.sum())


def saliency_margin_loss(
    saliency_logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """Moment-DETR / QD-DETR's hinge: ``max(0, margin + z[neg] - z[pos])`` per video, with ``pos`` the valid
    clip of the highest target and ``neg`` that of the lowest (the first of each on ties); videos whose
    targets are all equal are left out of the mean. (QD-DETR doubles its term: weight 2 matches it.)

    Args:
        saliency_logits, targets, mask: ``(batch, clips)``.
    """
    valid = mask.bool()
    targets = targets.to(saliency_logits.dtype)
    positive = targets.masked_fill(~valid, float("-inf")).argmax(dim=1, keepdim=True)
    negative = targets.masked_fill(~valid, float("inf")).argmin(dim=1, keepdim=True)
    ranked = (targets.gather(1, positive) > targets.gather(1, negative)).squeeze(1)
    gap = saliency_logits.gather(1, negative) - saliency_logits.gather(1, positive)
    per_video = (margin + gap.squeeze(1)).clamp(min=0) * ranked
    return per_video.sum() / global_mean_count(ranked.sum())


def saliency_rank_contrastive_loss(
    saliency_logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    levels: int = 12,
    temperature: float = 0.5,
) -> torch.Tensor:
    """CG-DETR's rank-contrastive loss. For each threshold ``t = k / levels`` (``k = 1 .. levels``) and each
    video with a clip at or above it, ``-(1/|P_t|) sum_{j in P_t} log softmax(z / temperature)_j``, the
    softmax over the video's valid clips and ``P_t = {j : y_j >= t}``; the mean over those (video,
    threshold) pairs. Targets are in [0, 1], so the thresholds cover the label range as the peers'
    ``range(1, 12)`` covers theirs.

    Args:
        saliency_logits, targets, mask: ``(batch, clips)``.
    """
    valid = mask.bool()
    targets = targets.to(saliency_logits.dtype)
    neg_inf = torch.finfo(saliency_logits.dtype).min
    log_prob = (saliency_logits / temperature).masked_fill(~valid, neg_inf).log_softmax(dim=1)
    log_prob = log_prob.masked_fill(~valid, 0.0)
    thresholds = torch.arange(1, levels + 1, device=targets.device, dtype=targets.dtype) / levels
    positive = (targets.unsqueeze(0) >= thresholds.view(-1, 1, 1) - 1e-6) & valid  # (levels, batch, clips)
    count = positive.sum(dim=2)  # (levels, batch)
    present = count > 0
    mean_log_prob = (positive * log_prob.unsqueeze(0)).sum(dim=2) / count.clamp(min=1)
    return -(mean_log_prob * present).sum() / global_mean_count(present.sum())


def negative_query_loss(
    negative_logits: torch.Tensor, mask: torch.Tensor, pairs: torch.Tensor
) -> torch.Tensor:
    """QD-DETR's negative pairs: ``-log(1 - sigmoid(z))`` summed over the valid clips of each video paired
    with another video's query, the mean over those pairs (QD-DETR's ``.sum(dim=1).mean()``, over real
    pairs only).

    Args:
        negative_logits: ``(batch, clips)`` saliency logits of video ``i`` with the query of video ``i - 1``.
        mask: ``(batch, clips)``. pairs: ``(batch,)`` bool, the rows that are real negative pairs.
    """
    clips = mask.bool() & pairs.unsqueeze(1)
    loss = F.softplus(negative_logits).masked_fill(~clips, 0.0)  # -log(1 - sigmoid(z)) = softplus(z)
    return loss.sum() / global_mean_count(pairs.sum())


class RDMFLoss(nn.Module):
    """The weighted sum of eq. 17, with every term returned for logging.

    ``forward`` takes the head outputs of each decoder layer (the last one first) and the labels, and
    returns ``(loss, terms)``; ``terms`` holds ``loss_saliency``, ``loss_moment``, ``loss_span``,
    ``loss_giou``, ``loss_class`` and ``loss_iou`` of the last layer (auxiliary layers add to ``loss``).
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.matcher = RDMFHungarianMatcher(
            config.matcher_class_cost, config.matcher_span_cost, config.matcher_giou_cost
        )

    def set_loss(self, logits, pred_spans, pred_ious, target_spans) -> dict[str, torch.Tensor]:
        """``L_mr`` terms and ``L_iou`` for one decoder layer's predictions."""
        matches = self.matcher(logits, pred_spans, target_spans)
        batch_index = torch.cat([torch.full_like(rows, i) for i, (rows, _) in enumerate(matches)])
        query_index = torch.cat([rows for rows, _ in matches])
        matched_pred = pred_spans[batch_index, query_index]  # (num_matched, 2)
        matched_target = torch.cat([t[cols] for t, (_, cols) in zip(target_spans, matches)]).to(matched_pred)
        num_spans = global_mean_count(torch.tensor(float(len(query_index)), device=logits.device))

        terms = {"loss_class": self.class_loss(logits, batch_index, query_index)}
        terms["loss_span"] = self.span_regression(matched_pred, matched_target).sum() / num_spans
        pred_xx, target_xx = span_cxw_to_xx(matched_pred), span_cxw_to_xx(matched_target)
        matched_iou = torch.diagonal(temporal_iou(pred_xx, target_xx))
        if self.config.use_giou_loss:
            giou = torch.diagonal(generalized_temporal_iou(pred_xx, target_xx))
            terms["loss_giou"] = (1 - giou).sum() / num_spans
        else:
            terms["loss_giou"] = matched_pred.new_zeros(())
        terms["loss_moment"] = (
            self.config.span_loss_coefficient * terms["loss_span"]
            + self.config.giou_loss_coefficient * terms["loss_giou"]
            + self.config.class_loss_coefficient * terms["loss_class"]
        )
        if pred_ious is not None:
            terms["loss_iou"] = self.iou_loss(
                pred_ious, pred_spans, target_spans, matches, matched_iou, num_spans
            )
        return terms

    def field_saliency_losses(self, terms, saliency_logits, targets, mask, negative) -> torch.Tensor:
        """The peers' saliency losses the config turns on, weighted; each term is added to ``terms``."""
        cfg, total = self.config, saliency_logits.new_zeros(())
        if cfg.saliency_margin_loss_weight > 0:
            terms["loss_saliency_margin"] = saliency_margin_loss(
                saliency_logits, targets, mask, cfg.saliency_margin
            )
            total = total + cfg.saliency_margin_loss_weight * terms["loss_saliency_margin"]
        if cfg.saliency_rank_contrastive_weight > 0:
            terms["loss_saliency_rank_contrastive"] = saliency_rank_contrastive_loss(
                saliency_logits, targets, mask, cfg.saliency_rank_contrastive_levels,
                cfg.saliency_rank_contrastive_temperature,
            )  # fmt: skip
            total = total + cfg.saliency_rank_contrastive_weight * terms["loss_saliency_rank_contrastive"]
        if cfg.saliency_negative_query_weight > 0 and negative is not None:
            terms["loss_negative_query"] = negative_query_loss(negative[0], mask, negative[1])
            total = total + cfg.saliency_negative_query_weight * terms["loss_negative_query"]
        return total

    def class_loss(self, logits, batch_index, query_index) -> torch.Tensor:
        """Foreground for matched queries, background (down-weighted by ``no_object_weight``) for the rest."""
        target = torch.full(logits.shape[:2], BACKGROUND, dtype=torch.long, device=logits.device)
        target[batch_index, query_index] = FOREGROUND
        weight = torch.tensor([1.0, self.config.no_object_weight], dtype=logits.dtype, device=logits.device)
        ce = F.cross_entropy(logits.transpose(1, 2), target, weight=weight, reduction="sum")
        return ce / global_mean_count(weight[target].sum())

    def span_regression(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.span_loss_type == "l1":
            return F.l1_loss(pred, target, reduction="none")
        return F.smooth_l1_loss(pred, target, reduction="none", beta=self.config.smooth_l1_beta)

    def iou_loss(self, pred_ious, pred_spans, target_spans, matches, matched_iou, num_spans) -> torch.Tensor:
        """``L_iou``: L1 between the predicted IoU and the true IoU (a fixed target, not differentiated)."""
        if self.config.iou_loss_on == "matched":
            predicted = torch.cat([p[rows] for p, (rows, _) in zip(pred_ious, matches)])
            return (predicted - matched_iou.detach()).abs().sum() / num_spans
        best = []
        for spans, targets in zip(pred_spans, target_spans):
            if len(targets) == 0:
                best.append(spans.new_zeros(len(spans)))
            else:
                iou = temporal_iou(span_cxw_to_xx(spans), span_cxw_to_xx(targets.to(spans)))
                best.append(iou.max(dim=1).values)
        best = torch.stack(best).detach()
        count = global_mean_count(torch.tensor(float(best.numel()), device=best.device))
        return (pred_ious - best).abs().sum() / count

    def forward(
        self, layer_outputs, saliency_logits, video_mask, labels, negative=None
    ) -> tuple[torch.Tensor, dict]:
        """Total loss (eq. 17) and its terms.

        Args:
            layer_outputs: list of ``(logits, pred_spans, pred_ious or None)`` per decoder layer, last first.
            saliency_logits: ``(batch, clips)``; video_mask: ``(batch, clips)``.
            negative: ``(logits (batch, clips), pairs (batch,) bool)`` of the negative query pairs, with
                ``config.saliency_negative_query_weight > 0``.
            labels: ``batch`` dicts with ``spans`` ``(n_i, 2)`` normalised (center, width) and ``saliency``
                ``(clips,)`` targets in [0, 1].
        """
        target_spans, saliency_targets = _unpack_labels(labels, video_mask)
        cfg = self.config
        terms = {"loss_saliency": saliency_loss(saliency_logits, saliency_targets, video_mask)}
        total = cfg.saliency_loss_weight * terms["loss_saliency"]
        if cfg.saliency_rank_loss_weight > 0:
            terms["loss_saliency_rank"] = saliency_rank_loss(
                saliency_logits,
                saliency_targets,
                video_mask,
                cfg.saliency_rank_loss,
                cfg.saliency_rank_temperature,
            )
            total = total + cfg.saliency_rank_loss_weight * terms["loss_saliency_rank"]
        total = total + self.field_saliency_losses(
            terms, saliency_logits, saliency_targets, video_mask, negative
        )
        for depth, (logits, spans, ious) in enumerate(layer_outputs):
            layer_terms = self.set_loss(logits, spans, ious, target_spans)
            total = total + cfg.moment_loss_weight * layer_terms["loss_moment"]
            if "loss_iou" in layer_terms:
                total = total + cfg.iou_loss_weight * layer_terms["loss_iou"]
            if depth == 0:
                terms.update(layer_terms)
        return total, terms


def _unpack_labels(labels, video_mask: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    batch, clips = video_mask.shape
    if len(labels) != batch:
        raise ValueError(f"labels: expected {batch} dicts (one per video), got {len(labels)}.")
    spans, saliency = [], []
    for i, label in enumerate(labels):
        missing = {"spans", "saliency"} - set(label)
        if missing:
            raise ValueError(
                f"labels[{i}] lacks {sorted(missing)}: expected keys 'spans' (n, 2) and 'saliency' (clips,)."
            )
        span = torch.as_tensor(label["spans"], dtype=torch.float32, device=video_mask.device).reshape(-1, 2)
        target = torch.as_tensor(label["saliency"], dtype=torch.float32, device=video_mask.device)
        if target.shape != (clips,):
            raise ValueError(f"labels[{i}]['saliency'] has shape {tuple(target.shape)}; expected ({clips},).")
        spans.append(span)
        saliency.append(target)
    return spans, torch.stack(saliency)


__all__ = [
    "RDMFHungarianMatcher",
    "RDMFLoss",
    "negative_query_loss",
    "saliency_loss",
    "saliency_margin_loss",
    "saliency_rank_contrastive_loss",
    "saliency_rank_loss",
]
