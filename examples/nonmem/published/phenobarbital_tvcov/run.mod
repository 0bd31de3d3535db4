$PROBLEM Phenobarbital in neonates, body weight changing over time
; Structure from Grasela TH, Donn SM, Dev Pharmacol Ther 1985;8(6):374-383 (CL and V proportional
; to weight, V larger when the Apgar score is below 5); estimates are NONMEM's FOCE-I fit to the
; public "pheno" data set distributed with pharmpy. WGT varies from record to record.
; AMT in mg, DV in mg/L, WGT in kg.
$INPUT ID TIME EVID AMT CMT MDV DV WGT APGR
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN1 TRANS2
$PK
TVCL = THETA(1) * WGT
TVV = THETA(2) * WGT
IF (APGR.LT.5) TVV = TVV * (1 + THETA(3))
CL = TVCL * EXP(ETA(1))
V = TVV * EXP(ETA(2))
S1 = V
$ERROR
IPRED = F
Y = IPRED + IPRED * EPS(1)
$THETA (0, 0.00469555) (0, 0.984258) (-0.99, 0.15892)
$OMEGA 0.0293508 ; CL
$OMEGA 0.027906 ; V
$SIGMA 0.013241
$ESTIMATION METHOD=1 INTERACTION MAXEVAL=0 POSTHOC
