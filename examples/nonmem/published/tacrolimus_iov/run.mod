$PROBLEM Tacrolimus, two compartments with lag time and inter-occasion variability on CL/F
; Structure and final estimates from Br J Clin Pharmacol 2019;85(3):601-615, doi:10.1111/bcp.13838
; (Table 2, final model), covariates at their reference values (the typical patient).
; Occasions are given by the OCC data item. AMT in mg, DV in ug/L (ng/mL).
$INPUT ID TIME EVID AMT CMT MDV DV OCC
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN4 TRANS4
$PK
IOV = 0
IF (OCC.EQ.1) IOV = ETA(5)
IF (OCC.EQ.2) IOV = ETA(6)
IF (OCC.EQ.3) IOV = ETA(7)
CL = THETA(1) * EXP(ETA(1) + IOV)
V2 = THETA(2) * EXP(ETA(2))
Q  = THETA(3) * EXP(ETA(3))
V3 = THETA(4) * EXP(ETA(4))
KA = THETA(5)
ALAG1 = THETA(6)
S2 = V2 / 1000
$ERROR
IPRED = F
W = SQRT(THETA(7)**2 + (THETA(8)*IPRED)**2)
Y = IPRED + W * EPS(1)
$THETA (0, 23.0) (0, 692) (0, 11.6) (0, 5340) (0, 3.58) (0, 0.38)
$THETA 0.88 FIX ; additive SD, ug/L (immunoassay)
$THETA 0.177 FIX ; proportional SD (immunoassay)
$OMEGA 0.1389 ; CL/F 38.6 % CV
$OMEGA 0.2168 ; V1/F 49.2 % CV
$OMEGA 0.4820 ; Q/F 78.7 % CV
$OMEGA 0.2476 ; V2/F 53.0 % CV
$OMEGA BLOCK(1) 0.0183 ; IOV CL/F 13.6 % CV
$OMEGA BLOCK(1) SAME
$OMEGA BLOCK(1) SAME
$SIGMA 1 FIX
$ESTIMATION METHOD=1 INTERACTION MAXEVAL=0 POSTHOC
