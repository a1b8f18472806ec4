#include "fm_test.h"
#include "core/core.h"
#include "privacy/accountant.h"
#include "privacy/privacy_int.h"
static const double tfp_orders[] = {1.25,1.5,1.75,2,2.25,2.5,3,3.5,4,4.5,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,128,256,512};
static void row(double q, double s, uint64_t T, double d) {
  size_t n = sizeof tfp_orders/sizeof *tfp_orders; double r[200], o1,o2,o3; 
  fmi_rdp_compose(q,s,T,0,tfp_orders,n,r);
  double b = fmi_rdp_to_eps_basic(tfp_orders,r,n,d,&o1), c = fmi_rdp_to_eps(tfp_orders,r,n,d,&o2);
  double r2[200]; fmi_rdp_compose(q,s,T,0,fmi_rdp_default_orders,FMI_RDP_NDEFAULT_ORDERS,r2);
  double c2 = fmi_rdp_to_eps(fmi_rdp_default_orders,r2,FMI_RDP_NDEFAULT_ORDERS,d,&o3);
  double r3[200]; fmi_rdp_compose(q,s,T,0,fmi_rdp_opacus_orders,FMI_RDP_NOPACUS_ORDERS,r3);
  double b3 = fmi_rdp_to_eps_basic(fmi_rdp_opacus_orders,r3,FMI_RDP_NOPACUS_ORDERS,d,NULL);
  double c3 = fmi_rdp_to_eps(fmi_rdp_opacus_orders,r3,FMI_RDP_NOPACUS_ORDERS,d,NULL);
  printf("q=%g s=%g T=%llu: tfp basic %.5f (%g) cur %.5f (%g) | dpacc %.5f (%g) | opacus basic %.5f cur %.5f\n",q,s,(unsigned long long)T,b,o1,c,o2,c2,o3,b3,c3);
}
int main(void){
  double o[] = {1.5,2.5,5,50,100,INFINITY};
  for (int i=0;i<6;i++) printf("poisson %g: %.8g\n", o[i], 50*fmi_rdp_poisson(0.01,2.5,o[i]));
  double w[] = {1.001,1.5,2.5,5,50,100,256,512,1024,INFINITY};
  for (int i=0;i<10;i++) printf("wor %g: %.8g\n", w[i], 50*fmi_rdp_wor(0.01,2.5,w[i]));
  printf("scalar %.6g\n", 10*fmi_rdp_poisson(0.1,2,5));
  row(256.0/60000,1.1,14063,1e-5); row(256.0/60000,1.3,3516,1e-5); row(256.0/60000,0.7,10547,1e-5);
  row(0.004,0.7,11250,1e-5); row(0.004,1.1,15000,1e-5); row(0.004,1.3,3750,1e-5);
  double r3[200]; fmi_rdp_compose(0.04,1.5,2250,0,fmi_rdp_opacus_orders,FMI_RDP_NOPACUS_ORDERS,r3);
  printf("opacus rdp test %.11f\n", fmi_rdp_to_eps_opacus(fmi_rdp_opacus_orders,r3,FMI_RDP_NOPACUS_ORDERS,1e-5));
  struct {double s,q; unsigned long long T; double v;} mv[] = {{0.8,0.001,100,0.270403364058018680360362395731},{3.0,0.2,100,3.38122051022184422208738396876},{1.5,0.05,1000,6.20996924657726712126759593957},{2.0,0.001,20000,0.305837939762453436820521801565},{1.5,0.001,100000,1.01528807502760787251361307426}};
  for (int i=0;i<5;i++){ fmi_dp_event ev={mv[i].q,mv[i].s,mv[i].T}; double e[3]; fm_error er; double t=fmi_now(); int rc=fmi_prv_epsilon(&ev,1,1e-6,0,0,e,&er); t=fmi_now()-t;
    printf("prv s=%g q=%g T=%llu rc=%d %s: %.9f %.9f %.9f vs %.9f (diff %.2e) %.3fs\n",mv[i].s,mv[i].q,mv[i].T,rc,rc?er.msg:"",e[0],e[1],e[2],mv[i].v,e[2]-mv[i].v,t);}
  return 0;}
