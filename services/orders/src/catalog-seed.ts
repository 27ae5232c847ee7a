import type { ProductDocument } from './product.repository';

// The demo catalog, inserted when the catalog is empty. Fixed ids, so instances starting together
// insert each product once.

type SeedProduct = [id: string, name: string, description: string, cents: number, stock: number];

const SEED: readonly SeedProduct[] = [
  ['prd_01J9YTEA0KETTLE00000000000', 'Stainless steel kettle', '1.7 l, auto shut-off.', 3999, 500],
  ['prd_01J9YTEA0MUG0000000000000', 'Stoneware mug', 'Hand-glazed, 350 ml.', 1250, 2000],
  ['prd_01J9YTEA0TEAPOT0000000000', 'Cast iron teapot', '0.9 l with infuser.', 4900, 300],
  ['prd_01J9YTEA0GRINDER000000000', 'Burr coffee grinder', '40 grind settings.', 8900, 250],
  ['prd_01J9YTEA0FRENCHPRESS00000', 'French press', 'Borosilicate glass, 1 l.', 2999, 800],
  ['prd_01J9YTEA0POUROVER0000000', 'Pour-over dripper', 'Ceramic, size 02.', 2200, 900],
  ['prd_01J9YTEA0FILTERS00000000', 'Paper filters (100)', 'Unbleached, size 02.', 699, 5000],
  ['prd_01J9YTEA0BEANSETH0000000', 'Coffee beans, Ethiopia', '250 g, light roast.', 1499, 3000],
  ['prd_01J9YTEA0BEANSCOL0000000', 'Coffee beans, Colombia', '250 g, medium roast.', 1399, 3000],
  ['prd_01J9YTEA0GREENTEA0000000', 'Sencha green tea', '100 g loose leaf.', 1199, 2500],
  ['prd_01J9YTEA0SCALE000000000000', 'Kitchen scale', '0.1 g precision, timer.', 3499, 600],
  ['prd_01J9YTEA0TUMBLER00000000', 'Insulated tumbler', '470 ml, keeps hot 6 h.', 2799, 1200],
  ['prd_01J9YTEA0CUTBOARD0000000', 'Oak cutting board', '40 × 30 cm.', 5900, 400],
  ['prd_01J9YTEA0CHEFKNIFE000000', "Chef's knife", '20 cm, German steel.', 9900, 350],
  ['prd_01J9YTEA0SKILLET00000000', 'Cast iron skillet', '26 cm, pre-seasoned.', 4499, 450],
  ['prd_01J9YTEA0DUTCHOVEN000000', 'Enamelled Dutch oven', '5.2 l.', 17900, 150],
  ['prd_01J9YTEA0APRON0000000000', 'Linen apron', 'Adjustable straps.', 3200, 700],
  ['prd_01J9YTEA0TOWELS000000000', 'Tea towels (3)', 'Waffle cotton.', 1800, 1500],
  ['prd_01J9YTEA0CANISTER0000000', 'Storage canister', 'Airtight, 1.2 l.', 1999, 1000],
  ['prd_01J9YTEA0SPICERACK000000', 'Spice rack', 'Bamboo, 12 jars.', 3900, 500],
  ['prd_01J9YTEA0WHISK000000000000', 'Balloon whisk', 'Stainless, 30 cm.', 999, 1800],
  ['prd_01J9YTEA0MIXBOWLS0000000', 'Mixing bowls (3)', 'Nesting, stainless.', 2599, 900],
  ['prd_01J9YTEA0ROLLINGPIN00000', 'Rolling pin', 'Beech, French style.', 1599, 800],
  ['prd_01J9YTEA0TIMER0000000000', 'Kitchen timer', 'Magnetic, 99 min.', 1099, 1600],
  ['prd_01J9YTEA0OILCRUET0000000', 'Oil cruet', 'Glass, 500 ml, drip-free.', 1499, 1100],
];

export function catalogSeed(now: Date): Omit<ProductDocument, 'reservations'>[] {
  return SEED.map(([id, name, description, cents, stock]) => ({
    _id: id,
    name,
    description,
    price: { amount: cents, currency: 'USD' },
    stock,
    createdAt: now,
  }));
}
