"""Small control streams written for these tests, one per construct (not copied from anywhere)."""

from pathlib import Path

ADVAN1_IV = (Path(__file__).parent / "fixtures" / "advan1_iv.mod").read_text()  # also the plug-in sample

ADVAN2_ORAL = """$PROBLEM oral, lag and bioavailability
$INPUT ID TIME AMT CMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN2 TRANS2
$PK
CL = THETA(1) * EXP(ETA(1))
V = THETA(2)
KA = THETA(3) * EXP(ETA(2))
ALAG1 = THETA(4)
F1 = 0.6
S2 = V
$ERROR
Y = F * EXP(EPS(1))
$THETA (0, 4) (0, 50) (0, 1.5) (0, 0.5)
$OMEGA 0.1
$OMEGA 0.2
$SIGMA 0.04
"""

ADVAN3_COMBINED = """$PROBLEM two compartments, combined error
$INPUT ID TIME AMT CMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN3 TRANS4
$PK
CL = THETA(1) * EXP(ETA(1))
V1 = THETA(2)
Q = THETA(3)
V2 = THETA(4)
S1 = V1
$ERROR
IPRED = F
W = SQRT(THETA(5)**2 + (THETA(6)*IPRED)**2)
Y = IPRED + W*EPS(1)
$THETA 3 20 2 60 0.1 FIX 0.15 FIX
$OMEGA 0.1
$SIGMA 1 FIX
"""

ADVAN4_IOV = """$PROBLEM two compartments oral, inter-occasion variability
$INPUT ID TIME AMT CMT DV MDV OCC
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN4 TRANS4
$PK
IOV = 0
IF (OCC.EQ.1) IOV = ETA(3)
IF (OCC.EQ.2) IOV = ETA(4)
CL = THETA(1) * EXP(ETA(1) + IOV)
V2 = THETA(2) * EXP(ETA(2))
Q = THETA(3)
V3 = THETA(4)
KA = THETA(5)
S2 = V2
$ERROR
Y = F + F*EPS(1)
$THETA 4 30 3 80 1
$OMEGA 0.1 0.1
$OMEGA BLOCK(1) 0.05
$OMEGA BLOCK(1) SAME
$SIGMA 0.02
"""

ADVAN10_MM = """$PROBLEM Michaelis-Menten elimination
$INPUT ID TIME AMT CMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN10
$PK
VM = THETA(1) * EXP(ETA(1))
KM = THETA(2)
V = THETA(3)
S1 = V
$ERROR
Y = F + THETA(4)*EPS(1)
$THETA 20 5 10 0.5
$OMEGA 0.1
$SIGMA 1 FIX
"""

ADVAN12_THREE = """$PROBLEM three compartments with absorption
$INPUT ID TIME AMT CMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN12 TRANS4
$PK
CL = THETA(1) * EXP(ETA(1))
V2 = THETA(2)
Q3 = THETA(3)
V3 = THETA(4)
Q4 = THETA(5)
V4 = THETA(6)
KA = THETA(7)
S2 = V2
$ERROR
Y = F*(1 + EPS(1))
$THETA 5 25 4 50 1 100 1.2
$OMEGA 0.1
$SIGMA 0.01
"""

ADVAN13_DES = """$PROBLEM $DES with IF/ELSE, duration D1, log-transformed error
$INPUT ID TIME AMT RATE CMT DV MDV SEX
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN13 TOL=9
$MODEL COMP=(CENTRAL DEFDOSE DEFOBS)
$PK
IF (SEX.EQ.1) THEN
  TVCL = THETA(1) * 0.8
ELSE
  TVCL = THETA(1)
ENDIF
CL = TVCL * EXP(ETA(1))
V = THETA(2)
D1 = THETA(3)
$DES
DADT(1) = -CL/V*A(1)
$ERROR
IPRED = LOG(A(1)/V)
Y = IPRED + EPS(1)
$THETA (0, 2) (0, 10) (0, 2)
$OMEGA 0.05
$SIGMA 0.01
"""

PRED_MODEL = """$PROBLEM closed form in $PRED
$INPUT ID TIME AMT DV
$DATA data.csv IGNORE=@
$PRED
K = THETA(1)
Y = AMT*EXP(-K*TIME) + EPS(1)
$THETA 0.1
$OMEGA 0.1
$SIGMA 0.1
"""

MIX_MODEL = ADVAN1_IV.replace("$ERROR", "$MIX\nP(1) = 0.5\nP(2) = 0.5\nNSPOP = 2\n$ERROR")
USER_ROUTINE = ADVAN1_IV.replace("ADVAN1 TRANS2", "ADVAN1 TRANS2 OTHER=mysub.f90")
MODELLED_RATE = ADVAN1_IV.replace("S1 = V", "S1 = V\nR1 = THETA(1)")
Y_ON_DATA = ADVAN1_IV.replace("Y = F + EPS(1)", "Y = F + DV*EPS(1)")

# W forms beyond the combined one: a power model, SDs that add, and an SD using a covariate
POWER_W = (
    ADVAN1_IV.replace(
        "Y = F + EPS(1)", "W = SQRT(THETA(3)**2 + (THETA(4)*IPRED**THETA(5))**2)\nY = IPRED + W*EPS(1)"
    )
    .replace("$THETA (0, 5, 50) (0, 40)", "$THETA (0, 5, 50) (0, 40) 0.2 FIX 0.15 FIX 0.7 FIX")
    .replace("$SIGMA 0.25", "$SIGMA 1 FIX")
)
SD_SUM_W = POWER_W.replace(
    "W = SQRT(THETA(3)**2 + (THETA(4)*IPRED**THETA(5))**2)", "W = THETA(3) + THETA(4)*IPRED"
)
COVARIATE_W = POWER_W.replace(
    "W = SQRT(THETA(3)**2 + (THETA(4)*IPRED**THETA(5))**2)",
    "W = SQRT((THETA(3)*WT/70)**2 + (THETA(4)*IPRED)**2)",
)
LOG_COVARIATE_SD = POWER_W.replace(
    "W = SQRT(THETA(3)**2 + (THETA(4)*IPRED**THETA(5))**2)\nY = IPRED + W*EPS(1)",
    "Y = LOG(IPRED) + THETA(3)*(WT/70)*EPS(1)",
)

# ADVAN5 ($MODEL): a parent (CMT 1, three outflows) forming a metabolite (CMT 2), with a
# peripheral compartment (CMT 3); W is set in IF blocks without ELSE and then tested (W.EQ.0).
ADVAN5_METABOLITE = """$PROBLEM general linear model: parent, metabolite, peripheral
$INPUT ID TIME AMT CMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN5
$MODEL
COMP=(CENTRAL, DEFDOSE, DEFOBS)
COMP=(METAB)
COMP=(PERIPH)
$PK
K10 = THETA(1) * EXP(ETA(1))
K12 = THETA(2)
K13 = THETA(3)
K31 = THETA(4)
K20 = THETA(5)
S1 = THETA(6)
S2 = THETA(7)
$ERROR
IF (CMT.EQ.1) W = THETA(8)
IF (CMT.EQ.2) W = THETA(9)
IF (W.EQ.0) W = 1
Y = F + W*EPS(1)
$THETA 0.2 0.1 0.3 0.15 0.25 20 30 0.5 0.2
$OMEGA 0.1
$SIGMA 1 FIX
"""

ADVAN8_STIFF = ADVAN13_DES.replace("ADVAN13", "ADVAN8")

# M3 censoring: a level below the LOQ (BLQ=1) is a likelihood PHI(...) with F_FLAG=1.
M3_BLQ = """$PROBLEM one compartment, M3 for levels below the LOQ
$INPUT ID TIME AMT DV MDV BLQ
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN1 TRANS2
$PK
CL = THETA(1) * EXP(ETA(1))
V = THETA(2)
S1 = V
$ERROR
IPRED = F
W = THETA(3)
LOQ = 0.5
DUM = (LOQ - IPRED)/W
CUMD = PHI(DUM)
IF (BLQ.EQ.0) THEN
  F_FLAG = 0
  Y = IPRED + W*EPS(1)
ELSE
  F_FLAG = 1
  Y = CUMD
ENDIF
$THETA (0, 4) (0, 40) 0.3
$OMEGA 0.1
$SIGMA 1 FIX
"""

# The same censoring written on DV itself (IF (DV.LT.LOQ) ...), on the log scale.
M3_ON_DV = """$PROBLEM one compartment, M3 on log DV
$INPUT ID TIME AMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN1 TRANS2
$PK
CL = THETA(1)
V = THETA(2) * EXP(ETA(1))
$ERROR
IPRED = LOG(A(1)/V)
LLOQ = LOG(0.1)
F_FLAG = 0
Y = IPRED + EPS(1)
IF (DV.LT.LLOQ) THEN
  F_FLAG = 1
  Y = PHI((LLOQ - IPRED)/SQRT(SIGMA(1,1)))
ENDIF
$THETA (0, 4) (0, 40)
$OMEGA 0.1
$SIGMA 0.04
"""

# Every record a likelihood (a count model through F_FLAG): not a continuous level.
ALL_LIKELIHOOD = M3_BLQ.replace("  F_FLAG = 0\n  Y = IPRED + W*EPS(1)", "  F_FLAG = 1\n  Y = EXP(-IPRED)")
LIKE_OPTION = ADVAN1_IV + "$ESTIMATION METHOD=COND LAPLACE LIKE\n"

# NONMEM's solver setting in verbatim code (IMAX through COMMON /PRCOMG/) changes no prediction.
SOLVER_VERBATIM = ADVAN1_IV.replace(
    "$PK\n",
    '$PK\n"FIRST\n" COMMON /PRCOMG/ IDUM1,IDUM2,IMAX,IDUM4,IDUM5\n" INTEGER IDUM1,IDUM2,IMAX,IDUM4,IDUM5\n'
    '" IMAX=70000000\n',
    1,
)
OTHER_VERBATIM = ADVAN1_IV.replace("$PK\n", '$PK\n" CALL MYSETUP(X)\n', 1)

# The same Y1 in both branches of an IF/ELSE that also sets W: pharmpy merges the block and puts
# Y1 before W, which the importer must still read as the code says.
MERGED_IF_BLOCK = """$PROBLEM one compartment, error set per CMT in one IF/ELSE block
$INPUT ID TIME AMT CMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN1 TRANS2
$PK
CL = THETA(1) * EXP(ETA(1))
V = THETA(2)
S1 = V
$ERROR
IPRED = F
IF (CMT.EQ.1) THEN
  W = THETA(3)
  Y1 = IPRED + W*EPS(1)
ELSE
  W = THETA(4)
  Y1 = IPRED + W*EPS(1)
ENDIF
Y = Y1
$THETA (0, 4) (0, 40) 0.3 0.7
$OMEGA 0.1
$SIGMA 1 FIX
"""

# Two observation types told apart by a data item other than CMT (DVID).
DVID_TYPES = """$PROBLEM parent levels and their log, told apart by DVID
$INPUT ID TIME AMT CMT DV MDV DVID
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN1 TRANS2
$PK
CL = THETA(1) * EXP(ETA(1))
V = THETA(2)
S1 = V
$ERROR
IF (DVID.EQ.1) THEN
  Y = F + THETA(3)*EPS(1)
ELSE
  Y = LOG(F) + EPS(1)
ENDIF
$THETA (0, 4) (0, 40) 0.3
$OMEGA 0.1
$SIGMA 1 FIX
"""

# A_0(n): a response compartment starting at twice its baseline, relaxing to it.
INITIAL_AMOUNT = """$PROBLEM turnover response with an initial amount
$INPUT ID TIME AMT CMT DV MDV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN13 TOL=9
$MODEL COMP=(CENTRAL DEFDOSE) COMP=(RESP DEFOBS)
$PK
CL = THETA(1)
V = THETA(2)
BASE = THETA(3) * EXP(ETA(1))
KOUT = THETA(4)
KIN = BASE * KOUT
A_0(2) = 2 * BASE
S2 = 1
$DES
DADT(1) = -CL/V*A(1)
DADT(2) = KIN - KOUT*A(2)
$ERROR
Y = F + THETA(5)*EPS(1)
$THETA (0, 4) (0, 40) (0, 10) (0, 0.3) 0.5
$OMEGA 0.1
$SIGMA 1 FIX
"""
