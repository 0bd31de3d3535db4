$PROBLEM Tacrolimus two-period crossover: reset (EVID 3) and reset-and-dose (EVID 4)
; Structure and final estimates from J Clin Pharmacol 2018;58(9):1184-1195, doi:10.1002/jcph.1118
; (Table 2), CYP3A5 and weight effects at their reference (expressers' factor 1, TBW = 85.9 kg).
; Written for digphat-interop's agreement set; AMT in mg, DV in ug/L (ng/mL).
$INPUT ID TIME EVID AMT CMT MDV DV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN4 TRANS4
$PK
TVCL = THETA(1)
TVV2 = THETA(2)
TVQ  = THETA(3)
TVV3 = THETA(4)
TVKA = THETA(5)
CL = TVCL * EXP(ETA(1))
V2 = TVV2 * EXP(ETA(2))
Q  = TVQ  * EXP(ETA(3))
V3 = TVV3
KA = TVKA * EXP(ETA(4))
ALAG1 = THETA(6)
S2 = V2 / 1000
$ERROR
IPRED = F
Y = IPRED + IPRED * EPS(1)
$THETA (0, 19.7) (0, 234) (0, 52.6) (0, 403) (0, 4.21) (0, 0.828)
$OMEGA 0.1283 ; CL/F 37.0 % CV
$OMEGA 0.4627 ; V/F 76.7 % CV
$OMEGA 0.2120 ; CLp/F 48.6 % CV
$OMEGA 0.3931 ; KA 69.4 % CV
$SIGMA 0.0081 ; proportional 9.0 %
$ESTIMATION METHOD=1 INTERACTION MAXEVAL=0 POSTHOC
