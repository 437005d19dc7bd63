"""The Label Studio labeling config and annotator instructions for claim attribution.

``granularity="symbol"``: selections keep exactly the characters the annotator marked, so the
stored offsets map 1:1 onto our code-point spans (word snapping would move boundaries around
punctuation and emoji, which we would then have to re-derive).
"""

from __future__ import annotations

from pipelines.core.document import LABELS, STANCES

LABEL_COLOURS: dict[str, str] = {"Claim": "#1f77b4", "Source": "#2ca02c", "Denial": "#d62728"}
RELATION_COLOURS: dict[str, str] = {
    "asserts": "#2ca02c",
    "denies": "#d62728",
    "unconfirmed": "#ff7f0e",
}

# names used in the Label Studio result JSON (``from_name`` / ``to_name``)
LABELS_NAME = "label"
TEXT_NAME = "text"

assert set(LABEL_COLOURS) == set(LABELS) and set(RELATION_COLOURS) == set(STANCES)


def label_config() -> str:
    labels = "\n".join(
        f'    <Label value="{lab}" background="{LABEL_COLOURS[lab]}"/>' for lab in LABELS
    )
    relations = "\n".join(
        f'    <Relation value="{st}" background="{RELATION_COLOURS[st]}"/>' for st in STANCES
    )
    return f"""<View>
  <Header value="$heading"/>
  <Header value="Mark Sources, Claims and Denials; link each Source to its Claim and label the link with a stance." size="6"/>
  <Relations>
{relations}
  </Relations>
  <Labels name="{LABELS_NAME}" toName="{TEXT_NAME}" choice="single">
{labels}
  </Labels>
  <Text name="{TEXT_NAME}" value="$text" granularity="symbol"/>
</View>
"""


INSTRUCTIONS = """
<h2>Claim attribution</h2>
<p>Mark <b>who says what</b>, and whether they stand behind it.</p>
<h3>Labels</h3>
<ul>
<li><b style="color:#2ca02c">Source</b>: the person, organisation or document that makes a statement
 (<i>Ukraine</i>, <i>a U.S. spokesman</i>, <i>the report</i>). Mark the shortest name that identifies it;
 pronouns only when no name is in the sentence.</li>
<li><b style="color:#1f77b4">Claim</b>: the content of what is stated, without the reporting verb
 (<i>Russia had used North Korean missiles</i>).</li>
<li><b style="color:#d62728">Denial</b>: the words that deny or withhold support for a claim
 (<i>denied</i>, <i>could not confirm</i>, <i>rejected reports that</i>).</li>
</ul>
<h3>Relations (Source &rarr; Claim)</h3>
<p>Draw a relation from each Source to the Claim it speaks about (select the Source, then
 <i>Create relation</i>, then click the Claim) and give the relation exactly one stance label:</p>
<ul>
<li><b>asserts</b>: the source states the claim is true.</li>
<li><b>denies</b>: the source states the claim is false.</li>
<li><b>unconfirmed</b>: the source says it cannot confirm, or only reports the claim without endorsing it.</li>
</ul>
<h3>Examples</h3>
<p><i>&ldquo;Ukraine said it could not confirm that Russia had used North Korean missiles.&rdquo;</i><br>
Source: <b>Ukraine</b>; Denial: <b>could not confirm</b>; Claim: <b>Russia had used North Korean missiles</b>;
relation Ukraine &rarr; Claim: <b>unconfirmed</b>.</p>
<p><i>&ldquo;A U.S. spokesman said Russia had used North Korean missiles.&rdquo;</i><br>
Source: <b>A U.S. spokesman</b>; Claim: <b>Russia had used North Korean missiles</b>;
relation: <b>asserts</b>.</p>
<p><i>&ldquo;The Kremlin denied that Russia had used North Korean missiles.&rdquo;</i><br>
Source: <b>The Kremlin</b>; Denial: <b>denied</b>; Claim: <b>Russia had used North Korean missiles</b>;
relation: <b>denies</b>.</p>
<h3>Rules</h3>
<ul>
<li>Spans never include the surrounding spaces or the final full stop.</li>
<li>A source split in two pieces (&ldquo;<i>Officials</i>, who spoke on condition of anonymity, <i>in Kyiv</i>&rdquo;):
 mark each piece as a Source and link each piece to the Claim.</li>
<li>If the task text is marked <i>stale</i> in the data columns, the article changed after import: skip it.</li>
<li>Use <i>Skip</i> for texts that are not news or contain no attributed claim.</li>
</ul>
""".strip()
