"""A COMBINE archive with a SED-ML experiment over the bundled gentamicin model (written for tests)."""

from __future__ import annotations

from interop.schema import ModelCard
from registry.formats.omex import CARD_LOCATION, JSON_FORMAT, SBML_FORMAT, SEDML_FORMAT, write_archive
from tests.data import GENTAMICIN_SBML

SEDML = """<?xml version="1.0" encoding="UTF-8"?>
<sedML xmlns="http://sed-ml.org/sed-ml/level1/version3" level="1" version="3"
       xmlns:sbml="http://www.sbml.org/sbml/level3/version1/core">
  <listOfSimulations>
    <uniformTimeCourse id="sim1" initialTime="0" outputStartTime="0" outputEndTime="24"
                       numberOfPoints="24">
      <algorithm kisaoID="KISAO:0000019"/>
    </uniformTimeCourse>
  </listOfSimulations>
  <listOfModels>
    <model id="model1" language="urn:sedml:language:sbml.level-3.version-1" source="model.xml">
      <listOfChanges>
        <changeAttribute target="{species}/@initialAmount"
                         newValue="{dose}"/>
      </listOfChanges>
    </model>
  </listOfModels>
  <listOfTasks>
    <task id="task1" modelReference="model1" simulationReference="sim1"/>
  </listOfTasks>
  <listOfDataGenerators>
    <dataGenerator id="time" name="time">
      <listOfVariables>
        <variable id="t" symbol="urn:sedml:symbol:time" taskReference="task1"/>
      </listOfVariables>
      <math xmlns="http://www.w3.org/1998/Math/MathML"><ci>t</ci></math>
    </dataGenerator>
    <dataGenerator id="conc" name="conc">
      <listOfVariables>
        <variable id="c" target="/sbml:sbml/sbml:model/sbml:listOfParameters/sbml:parameter[@id='Cc']"
                  taskReference="task1"/>
      </listOfVariables>
      <math xmlns="http://www.w3.org/1998/Math/MathML"><ci>c</ci></math>
    </dataGenerator>
    <dataGenerator id="amount" name="amount">
      <listOfVariables>
        <variable id="a" target="{species}"
                  taskReference="task1"/>
      </listOfVariables>
      <math xmlns="http://www.w3.org/1998/Math/MathML"><ci>a</ci></math>
    </dataGenerator>
  </listOfDataGenerators>
  <listOfOutputs>
    <report id="report1">
      <listOfDataSets>
        <dataSet id="d_time" label="time" dataReference="time"/>
        <dataSet id="d_amount" label="amount" dataReference="amount"/>
        <dataSet id="d_conc" label="concentration" dataReference="conc"/>
      </listOfDataSets>
    </report>
    <plot2D id="plot1">
      <listOfCurves>
        <curve id="c1" logX="false" logY="false" xDataReference="time" yDataReference="amount"/>
      </listOfCurves>
    </plot2D>
  </listOfOutputs>
</sedML>
"""


_SPECIES = "/sbml:sbml/sbml:model/sbml:listOfSpecies/sbml:species[@id='A_central']"


def sedml_archive(dose: float = 100.0, reported: bytes | None = None, card: ModelCard | None = None) -> bytes:
    """The gentamicin model with the experiment above (a bolus of ``dose`` as the initial amount),
    optionally the authors' reported ``report1.csv`` and a model card."""
    entries = [
        ("model.xml", SBML_FORMAT, GENTAMICIN_SBML.read_bytes(), True),
        (
            "experiment.sedml",
            SEDML_FORMAT,
            SEDML.replace("{dose}", f"{dose:g}").replace("{species}", _SPECIES).encode(),
            False,
        ),
    ]
    if reported is not None:
        entries.append(("report1.csv", "http://purl.org/NET/mediatypes/text/csv", reported, False))
    if card is not None:
        entries.append((CARD_LOCATION, JSON_FORMAT, card.model_dump_json().encode(), False))
    return write_archive(entries)
