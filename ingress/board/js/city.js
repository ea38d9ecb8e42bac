// The city drawn without map tiles: an outline of the Ciudad Autónoma de
// Buenos Aires (General Paz, the Riachuelo and the river shore), coarse on
// purpose, in [lat, lng]. The seed's area (domain.md §10) frames it.

export const AREA = { south: -34.705, north: -34.527, west: -58.531, east: -58.335 };

export const OUTLINE = [
  [-34.5355, -58.4625], [-34.5450, -58.4380], [-34.5600, -58.4060], [-34.5760, -58.3900],
  [-34.5870, -58.3720], [-34.5950, -58.3650], [-34.6050, -58.3560], [-34.6200, -58.3500],
  [-34.6330, -58.3530], [-34.6400, -58.3650], [-34.6500, -58.3900], [-34.6600, -58.4150],
  [-34.6750, -58.4400], [-34.6900, -58.4600], [-34.7050, -58.4620], [-34.6930, -58.4880],
  [-34.6700, -58.5050], [-34.6520, -58.5290], [-34.6300, -58.5300], [-34.6150, -58.5310],
  [-34.6000, -58.5250], [-34.5850, -58.5100], [-34.5700, -58.5000], [-34.5530, -58.4900],
  [-34.5420, -58.4750],
];

// The shore runs along OUTLINE[0..=8]; the Riachuelo along OUTLINE[8..=14].
export const SHORE_END = 8;
export const RIACHUELO_END = 14;

// The river beyond the shore, continued past the city both ways.
export const RIVER = [
  [-34.48, -58.51], [-34.5355, -58.4625], [-34.5450, -58.4380], [-34.5600, -58.4060], [-34.5760, -58.3900],
  [-34.5870, -58.3720], [-34.5950, -58.3650], [-34.6050, -58.3560], [-34.6200, -58.3500], [-34.6330, -58.3530],
  [-34.6600, -58.3200], [-34.7300, -58.2500], [-34.7300, -58.1500], [-34.4800, -58.1500],
];

export const LABELS = [
  { lat: -34.585, lng: -58.352, text: 'Río de la Plata' },
  { lat: -34.672, lng: -58.392, text: 'Riachuelo' },
];
