"""The methods paragraph of a report, written from the study's actual design and document."""

from __future__ import annotations

from emaudit.calibration.report_store import StudyDesign
from emaudit.calibration.report_view import DocumentView

REFERENCES = {
    "betley2025": "Betley, J. et al. (2025). Emergent misalignment: narrow finetuning can produce broadly "
    "misaligned LLMs. arXiv:2502.17424.",
    "neyman1934": "Neyman, J. (1934). On the two different aspects of the representative method. J. R. "
    "Stat. Soc. 97:558-625.",
    "cochran1977": "Cochran, W. G. (1977). Sampling Techniques, 3rd ed., ch. 12 (double sampling). Wiley.",
    "zou2008": "Zou, G. Y. & Donner, A. (2008). Construction of confidence limits about effect measures: "
    "a general approach. Stat. Med. 27:1693-1702.",
    "brown2001": "Brown, L. D., Cai, T. T. & DasGupta, A. (2001). Interval estimation for a binomial "
    "proportion. Stat. Sci. 16:101-133.",
    "newcombe1998": "Newcombe, R. G. (1998). Interval estimation for the difference between independent "
    "proportions: comparison of eleven methods. Stat. Med. 17:873-890.",
    "krippendorff2004": "Krippendorff, K. (2004). Content Analysis: An Introduction to Its Methodology, "
    "2nd ed. Sage.",
    "lee2025": "Lee, C., Zeng, T., Jeong, J., Sohn, J. & Lee, K. (2025). How to correctly report "
    "LLM-as-a-judge evaluations. arXiv:2511.21140.",
    "lang2014": "Lang, Z. & Reiczigel, J. (2014). Confidence limits for prevalence of disease adjusted for "
    "estimated sensitivity and specificity. Prev. Vet. Med. 113:13-22.",
    "rogan1978": "Rogan, W. J. & Gladen, B. (1978). Estimating prevalence from the results of a screening "
    "test. Am. J. Epidemiol. 107:71-76.",
    "fleiss1971": "Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychol. "
    "Bull. 76:378-382.",
}


def methods_paragraph(view: DocumentView, design: StudyDesign, *, simulated: bool = False) -> str:
    """A methods paragraph (plain text with author-year citations) for ``view``'s study."""
    n_cells = len(view.cells)
    n_judged = view.overall.n_judged
    n_labelled = sum(cell.n_labelled for cell in view.cells)  # the overall row lists no strata
    labels = view.human_labels
    keys = [k for k in design.strata_keys if k not in ("judge_label", "score_band")]
    by_band = "score_band" in design.strata_keys
    alpha = next(
        (a for a in view.agreement if a.who == "human_human" and a.statistic == "alpha_nominal"), None
    )
    estimand = ", ".join(view.estimands) or "responses"
    parts = []
    if simulated:
        parts.append(
            "All data in this report are simulated (emaudit demo): the model, the judge and the human "
            "raters are scripted, and the true EM rate is known by construction."
        )
    parts.append(
        f"The judge ({design.judge_model or 'unnamed'}) scored {n_judged} responses in {n_cells} cell(s)"
        + (f" defined by {', '.join(keys)}" if keys else "")
        + f" for alignment and coherence (0-100); a response counts as misaligned when alignment < "
        f"{design.max_alignment:g} and coherence > {design.min_coherence:g} (Betley et al. 2025)."
    )
    edges = [design.max_alignment, *(design.band_edges or (60.0,))]
    bands = ", ".join(f"{a:g}-{b:g}" for a, b in zip(edges, [*edges[1:], 100.0], strict=True))
    parts.append(
        (
            "From these we drew a sample stratified by the judge's label"
            if not by_band
            else "From these we drew a sample stratified by bands of the judge's alignment score "
            f"(judge-positive below {design.max_alignment:g}; {bands}; incoherent and unscored answers "
            "apart)"
        )
        + (f" and {', '.join(keys)}" if keys else "")
        + f" ({design.n_strata} strata, {design.allocation} allocation"
        + (f", {design.total} items" if design.total else "")
        + f", seed {design.seed}); each item was rated blind (question and answer only) by up to "
        f"{design.overlap} of {design.n_raters} raters ({design.n_ratings} ratings)."
        + (
            " The score defined the strata only: the estimand is unchanged (the human-label EM rate "
            "among these responses)."
            if by_band
            else ""
        )
    )
    rule = view.rules.get("human_label", "majority of raters")
    model = f" The human-label model was {view.human_label_model}." if view.human_label_model else ""
    parts.append(
        f"The human label of an item is the {rule}; {labels.get('n_decided', 0)} items were decided, "
        f"{labels.get('n_cant_tell', 0)} were can't-tell or tied ({view.rules.get('cant_tell', 'exclude')}), "
        f"{labels.get('n_adjudicated', 0)} adjudicated and {labels.get('n_gold_excluded', 0)} gold items "
        f"excluded; the corrected rates treat this label as the truth.{model}"
    )
    if view.method == "pooled":
        pooled = view.pooled or {}
        pool = pooled.get("pool") or {}
        flagged = (pooled.get("transfer_test") or {}).get("flagged_cells") or []
        pool_text = (
            f" (effective {pool['n_pos_effective']:.0f} human-positive and {pool['n_neg_effective']:.0f} "
            "human-negative calibration labels)"
            if pool
            else ""
        )
        parts.append(
            "Error-corrected EM rates use one calibration pool across cells (Lee et al. 2025): the judge's "
            f"sensitivity and specificity were estimated once from all {n_labelled} human labels by Bayes "
            f"inversion of the stratified sample{pool_text}, and each cell's judge rate was corrected by "
            f"Rogan & Gladen (1978) with the {view.confidence:.0%} interval of Lang & Reiczigel (2014); "
            "the estimand is the rate among each cell's judged responses. This assumes the judge's error "
            "rates are the same in every cell (transfer); a test comparing each cell's own error rates with "
            "the pooled ones (Bonferroni-adjusted) "
            + (f"flagged {', '.join(flagged)}." if flagged else "flagged no cell.")
            + " The overall rate uses the two-phase estimator over all strata (Neyman 1934; Cochran 1977). "
            "Differences between cells (MOVER, Newcombe 1998) treat the cells' intervals as independent, "
            "which they are not when both share the pool's Se and Sp: read them as approximate."
        )
    else:
        parts.append(
            f"Error-corrected EM rates use the two-phase (double-sampling) estimator over the judge strata "
            f"(Neyman 1934; Cochran 1977) with {n_labelled} human labels and MOVER-Wilson "
            f"{view.confidence:.0%} intervals (Zou & Donner 2008) built on modified Wilson limits per "
            f"stratum (Brown, Cai & DasGupta 2001); the estimand is {estimand} "
            "('responses': the rate among these judged answers). Judge error rates come from Bayes inversion "
            "of the stratified sample. Differences between cells are differences of corrected rates of "
            "independent samples with MOVER intervals (Newcombe 1998)."
        )
    if alpha is not None and alpha.value is not None:
        interval = "" if alpha.low is None else f" [{alpha.low:.2f}, {alpha.high:.2f}]"
        agreement = f"Krippendorff's alpha (nominal) between raters was {alpha.value:.2f}{interval}"
    else:
        agreement = "Agreement is reported as Krippendorff's alpha"
    parts.append(
        f"{agreement} (Krippendorff 2004), with Fleiss' and Cohen's kappa (Fleiss 1971); as the sample "
        "is stratified by the judge's label, these chance-corrected coefficients describe the sample, "
        "not the judged population."
    )
    return " ".join(parts)
