"""Rewrite a PharmML 0.8.1 document as PharmML 0.9 or 0.6 (for the version tests).

The rewrites follow the published differences between the versions (the PharmML converters'
0.6 -> 0.8.1 and 0.8.1 -> 0.9 transformations), run backwards for 0.6:

- 0.9: namespaces ``/0.9/``; the contents of ``IndividualParameter//FixedEffect``,
  ``IndividualParameter//RandomEffects`` and ``Correlation//RandomVariable1|2`` wrapped in
  ``ct:Assign``.
- 0.6: namespaces ``/0.6/``; ``SimpleParameter`` for ``PopulationParameter``; ``GaussianModel``
  for ``StructuredModel``; ``<Transformation>log</Transformation>``;
  ``LinearCovariate/PopulationParameter`` for ``PopulationValue``; ``math:Equation`` inside
  every ``ct:Assign``; UncertML normal distributions for ProbOnto ones; the external dataset
  inside ``ModellingSteps``.
"""

from __future__ import annotations

from lxml import etree

CT = "http://www.pharmml.org/pharmml/{v}/CommonTypes"
MDEF = "http://www.pharmml.org/pharmml/{v}/ModelDefinition"
MATH = "http://www.pharmml.org/pharmml/{v}/Maths"
MSTEP = "http://www.pharmml.org/pharmml/{v}/ModellingSteps"
UNCERTML = "http://www.uncertml.org/3.0"


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _renamespace(raw: bytes, version: str) -> etree._Element:
    text = raw.replace(b"pharmml.org/pharmml/0.8/", f"pharmml.org/pharmml/{version}/".encode())
    text = text.replace(b'writtenVersion="0.8.1"', f'writtenVersion="{version}"'.encode())
    return etree.fromstring(text, etree.XMLParser(resolve_entities=False, no_network=True))


def _wrap(el: etree._Element, tag: str) -> None:
    wrapper = etree.Element(tag)
    categories = []
    for c in list(el):
        if isinstance(c.tag, str) and _local(c) == "Category":  # 0.9: ct:CatRef after the Assign
            c.tag = tag.replace("}Assign", "}CatRef")
            c.attrib["catIdRef"] = c.attrib.pop("catId")
            categories.append(c)
        else:
            wrapper.append(c)
    el.append(wrapper)
    for c in categories:
        el.append(c)


def to_09(raw: bytes) -> bytes:
    root = _renamespace(raw, "0.9")
    assign = f"{{{CT.format(v='0.9')}}}Assign"
    for ip in root.iter(f"{{{MDEF.format(v='0.9')}}}IndividualParameter"):
        for el in list(ip.iter()):
            if isinstance(el.tag, str) and _local(el) in ("FixedEffect", "RandomEffects"):
                _wrap(el, assign)
    for corr in root.iter(f"{{{MDEF.format(v='0.9')}}}Correlation"):
        for el in list(corr.iter()):
            if isinstance(el.tag, str) and _local(el) in ("RandomVariable1", "RandomVariable2"):
                _wrap(el, assign)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def to_06(raw: bytes) -> bytes:
    root = _renamespace(raw, "0.6")
    mdef, ct, math = MDEF.format(v="0.6"), CT.format(v="0.6"), MATH.format(v="0.6")
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        ns, name = etree.QName(el).namespace, _local(el)
        if ns == mdef and name == "PopulationParameter":
            el.tag = f"{{{mdef}}}SimpleParameter"
        elif ns == mdef and name == "StructuredModel":
            el.tag = f"{{{mdef}}}GaussianModel"
        elif ns == mdef and name == "Transformation" and el.get("type"):
            el.text = el.attrib.pop("type")
        elif ns == mdef and name == "PopulationValue":
            if _local(el.getparent()) != "LinearCovariate":  # 0.6 always has the LinearCovariate
                holder = etree.Element(f"{{{mdef}}}LinearCovariate")
                el.addprevious(holder)
                holder.append(el)
            el.tag = f"{{{mdef}}}PopulationParameter"
        elif ns == ct and name == "Assign" and len(el) == 1:
            _wrap(el, f"{{{math}}}Equation")
    for dist in list(root.iter(f"{{{mdef}}}Distribution")):
        po = dist[0]
        kind = po.get("name")
        normal = etree.Element(f"{{{UNCERTML}}}NormalDistribution", nsmap={None: UNCERTML})
        for p in po:
            name = {"mean": "mean", "stdev": "stddev", "var": "variance"}[p.get("name")]
            holder = etree.SubElement(normal, f"{{{UNCERTML}}}{name}")
            value = next(x for x in p.iter() if _local(x) in ("Real", "Int", "SymbRef"))
            if _local(value) == "SymbRef":
                etree.SubElement(holder, f"{{{UNCERTML}}}var", varId=value.get("symbIdRef"))
            else:
                etree.SubElement(holder, f"{{{UNCERTML}}}rVal").text = value.text
        assert kind in ("Normal1", "Normal2")
        parent = dist.getparent()
        parent.replace(dist, normal)
    steps = next((c for c in root if _local(c) == "ModellingSteps"), None)
    design = next((c for c in root if _local(c) == "TrialDesign"), None)
    if steps is not None and design is not None:
        for ext in [c for c in design if _local(c) == "ExternalDataSet"]:
            ext.tag = f"{{{MSTEP.format(v='0.6')}}}ExternalDataSet"
            steps.insert(0, ext)
        if len(design) == 0:
            root.remove(design)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
