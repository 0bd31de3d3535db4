$PROBLEM Parent and metabolite, one compartment each, IV infusion of the parent
; Structure: the parent-metabolite example of the ADAPT 5 User's Guide (D'Argenio, Schumitzky, Wang,
; 2009), the parent fully converted to the metabolite (amounts in parent mass equivalents).
; Typical values and variabilities are ours (see README). AMT in mg, DV in mg/L.
$INPUT ID TIME EVID AMT RATE CMT MDV DV
$DATA data.csv IGNORE=@
$SUBROUTINES ADVAN13 TOL=9
$MODEL
COMP=(PARENT DEFDOSE DEFOBS)
COMP=(METAB)
$PK
CL  = THETA(1) * EXP(ETA(1))
V   = THETA(2) * EXP(ETA(2))
CLM = THETA(3) * EXP(ETA(3))
VM  = THETA(4) * EXP(ETA(4))
S1 = V
S2 = VM
$DES
DADT(1) = -CL / V * A(1)
DADT(2) =  CL / V * A(1) - CLM / VM * A(2)
$ERROR
IPRED = F
IF (CMT.EQ.1) Y = IPRED + IPRED * EPS(1)
IF (CMT.EQ.2) Y = IPRED + IPRED * EPS(2)
$THETA (0, 8) (0, 40) (0, 4) (0, 25)
$OMEGA 0.09 ; CL
$OMEGA 0.04 ; V
$OMEGA 0.09 ; CLM
$OMEGA 0.04 ; VM
$SIGMA 0.01 ; parent proportional 10 %
$SIGMA 0.0144 ; metabolite proportional 12 %
$ESTIMATION METHOD=1 INTERACTION MAXEVAL=0 POSTHOC
