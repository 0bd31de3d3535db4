$PROBLEM Phenytoin, one compartment, first-order absorption, Michaelis-Menten elimination
; Structure and final estimates from Ther Drug Monit 2016;38(6):728-737, doi:10.1097/FTD.0000000000000354
; (Table 2: oral fast-release phenytoin, Vmax 19.3 mg/h, Km 5 mg/L, V 78.6 L, F 0.859, ka 0.459 /h).
; AMT in mg, DV in mg/L.
$INPUT ID TIME EVID AMT CMT MDV DV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN13 TOL=9
$MODEL
COMP=(DEPOT DEFDOSE)
COMP=(CENTRAL DEFOBS)
$PK
VMAX = THETA(1) * EXP(ETA(1))
KM   = THETA(2) * EXP(ETA(2))
V    = THETA(3) * EXP(ETA(3))
KA   = THETA(4)
F1   = THETA(5)
S2 = V
$DES
C2 = A(2) / V
DADT(1) = -KA * A(1)
DADT(2) =  KA * A(1) - VMAX * C2 / (KM + C2)
$ERROR
IPRED = F
Y = IPRED + IPRED * EPS(1)
$THETA (0, 19.3) (0, 5) (0, 78.6) (0, 0.459) 0.859 FIX
$OMEGA 0.1336 ; VMAX 37.8 % CV
$OMEGA 1.3584 ; KM 170 % CV
$OMEGA 0.1088 ; V 33.9 % CV
$SIGMA 0.02924 ; proportional 17.1 %
$ESTIMATION METHOD=1 INTERACTION MAXEVAL=0 POSTHOC
